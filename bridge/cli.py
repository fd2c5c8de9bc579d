"""The `mailsms` command: serve the bridge and administer it.

Subcommands cover the database, customers, users, orders and the sandbox SMSC.

Every command takes `-c/--config FILE` (or `MAILSMS_CONFIG=FILE`); without it the
embedded default applies (SQLite in `var/`, the sandbox SMSC, notices to `var/maildir/`).
`assemble()` puts the commands of every `cli_*` module together; help is plain text, so
on/off flags read `--flag / --no-flag` and `[section]` names in help texts stay.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bridge import __version__, packaged
from bridge.cli_db import CONFIG_ENV, admin_engine
from bridge.db import engine as db
from bridge.db.store import run_sync
from bridge.errors import ConfigError
from bridge.intake.access import check_cidrs
from bridge.mt import orders as order_sql
from bridge.settings import Settings, load_settings
from bridge.tenants.admin import (
    AdminError,
    add_customer,
    add_user,
    list_customers,
    list_users,
    set_user_enabled,
)
from bridge.tenants.policy import PolicyError

app = typer.Typer(
    help=(
        "E-mail ⇄ SMS bridge: mail to <number>@<domain> becomes an SMS; "
        "receipts and replies come back by mail."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # a crash must not print passwords held in locals
)
config_app = typer.Typer(help="Show configuration.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
customer_app = typer.Typer(
    help="Customers (companies; the top of the settings cascade).", no_args_is_help=True
)
user_app = typer.Typer(help="Users: the mail addresses that may send SMS.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(customer_app, name="customer")
app.add_typer(user_app, name="user")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Settings file (TOML). Default: the embedded default (SQLite, sandbox SMSC).",
        envvar=CONFIG_ENV,
        exists=True,
        dir_okay=False,
    ),
]


def _settings(config: Path | None) -> Settings:
    try:
        return load_settings(config)
    except ConfigError as exc:
        typer.echo(f"mailsms: {exc}", err=True)
        raise typer.Exit(2) from None


def _engine(config: Path | None, *, create: bool = False) -> Engine:
    """The migrated database of these settings, or a one-line error and exit status 1.

    A missing SQLite database is created only with `create` (see `bridge.cli_db`).
    """
    return admin_engine(_settings(config), config, create=create)


def _fail(message: str) -> NoReturn:
    typer.echo(f"mailsms: {message}", err=True)
    raise typer.Exit(1)


@app.command()
def serve(config: ConfigOpt = None) -> None:
    """Run the bridge in the foreground (Ctrl-C stops it).

    SMTP intake, dispatch to the SMSC, receipts, inbound SMS and notices; the database
    is migrated first. Without -c: SQLite in var/, the sandbox SMSC, notices in var/maildir/.
    """
    from bridge.app import run

    settings = _settings(config)
    lacking = packaged.missing()
    if lacking:
        _fail(
            f"this installation of mailsms is incomplete ({lacking[0]} is missing); "
            "reinstall it (pip install --force-reinstall mailsms)"
        )
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command chatter
    try:
        asyncio.run(run(settings))
    except ConfigError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot start: {exc}")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"mailsms {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    pass


@app.command()
def version() -> None:
    """Print the version."""
    _print_version(True)


@config_app.command("example")
def config_example() -> None:
    """Print a fully commented example settings file (also in examples/bridge.toml)."""
    typer.echo(packaged.EXAMPLE_CONFIG.read_text(encoding="utf-8"), nl=False)


@config_app.command("check")
def config_check(config: ConfigOpt = None) -> None:
    """Validate a settings file and print the effective settings as JSON.

    If the database exists, also warn (on stderr) about customers open to the world.
    """
    settings = _settings(config)
    typer.echo(json.dumps(settings.model_dump(mode="json"), indent=2))
    for name, warning in _exposures(settings):
        typer.echo(f"mailsms: warning: customer {name} {warning}", err=True)


def _exposures(settings: Settings) -> list[tuple[str, str]]:
    """Customers whose access rules need attention, if the database can be read as it is."""
    from sqlalchemy.engine import make_url

    from bridge.intake.access_store import exposures

    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or ":memory:").is_file():
        return []  # no database yet: nothing to check (and nothing to create here)
    try:
        engine = db.open_engine(settings.database_url)
        try:
            if db.current_revision(engine) is None:
                return []
            return run_sync(engine, exposures)
        finally:
            engine.dispose()
    except (ConfigError, SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        typer.echo(f"mailsms: customers not checked, database not readable ({reason})", err=True)
        return []


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None) -> None:
    """Create or migrate the database schema to the newest version (serve does this too)."""
    engine = _engine(config, create=True)
    typer.echo(f"database at revision {db.current_revision(engine)}: {db.check_durability(engine)}")


@customer_app.command("add")
def customer_add(
    name: str,
    country: Annotated[
        str, typer.Option(help="Default country for national numbers (ISO code).")
    ] = "DE",
    sender_id: Annotated[
        str | None, typer.Option(help="Default sender ID for this customer's SMS.")
    ] = None,
    network: Annotated[
        list[str] | None,
        typer.Option(help="Client network (CIDR) of its mail servers; repeatable."),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Add a customer.

    Its users can send only from its client networks (--network, or later
    `mailsms customer access NAME --network CIDR`) or after SMTP AUTH with one of
    its logins (`mailsms login add LOGIN --customer NAME`).
    """
    settings: dict[str, Any] = {"default_country": country.upper()}
    if sender_id:
        settings["sender_id"] = sender_id
    if network:
        try:
            settings["access"] = {"networks": list(check_cidrs(network))}
        except ValueError as exc:
            _fail(f"--network: {exc}")
    try:
        run_sync(_engine(config), add_customer, name, settings)
    except AdminError as exc:
        _fail(str(exc))
    typer.echo(f"customer {name} added")
    if network:
        typer.echo(f"its users may send from {', '.join(network)}")
    else:
        typer.echo(
            "its users cannot send yet: allow its mail servers with "
            f"`mailsms customer access {name} --network CIDR`, or add a login for SMTP "
            f"AUTH with `mailsms login add LOGIN --customer {name}`"
        )


@customer_app.command("list")
def customer_list(config: ConfigOpt = None) -> None:
    """List customers with their number of users."""
    for c in run_sync(_engine(config), list_customers):
        typer.echo(
            f"{c.name:<24} {'enabled' if c.enabled else 'disabled':<9} "
            f"users={c.users:<6} {json.dumps(c.settings)}"
        )


@user_app.command("add")
def user_add(
    address: str,
    customer: Annotated[str, typer.Option(help="The customer this user belongs to.")],
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    notify: Annotated[str | None, typer.Option(help="Status mails: none, failures or all.")] = None,
    sender_id: Annotated[str | None, typer.Option(help="Sender ID for this user's SMS.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Allow ADDRESS (an envelope sender) to send SMS."""
    settings: dict[str, Any] = {}
    if notify:
        if notify not in ("none", "failures", "all"):
            _fail("--notify: expected none, failures or all")
        settings["notify"] = notify
    if sender_id:
        settings["sender_id"] = sender_id
    try:
        run_sync(_engine(config), add_user, address, customer, display_name=name, settings=settings)
    except AdminError as exc:
        _fail(str(exc))
    typer.echo(f"user {address.lower()} added to {customer}")


@user_app.command("list")
def user_list(
    customer: Annotated[str | None, typer.Option(help="Only this customer's users.")] = None,
    config: ConfigOpt = None,
) -> None:
    """List users."""
    for u in run_sync(_engine(config), list_users, customer):
        state = "enabled" if u.enabled else "disabled"
        typer.echo(f"{u.address:<36} {u.customer:<16} {state:<9} {u.origin:<8} {u.display_name}")


@user_app.command("disable")
def user_disable(address: str, config: ConfigOpt = None) -> None:
    """Stop ADDRESS from sending SMS (its history stays)."""
    try:
        run_sync(_engine(config), set_user_enabled, address, False)
    except AdminError as exc:
        _fail(str(exc))
    typer.echo(f"user {address.lower()} disabled")


@user_app.command("enable")
def user_enable(address: str, config: ConfigOpt = None) -> None:
    """Allow a disabled ADDRESS to send SMS again."""
    try:
        run_sync(_engine(config), set_user_enabled, address, True)
    except AdminError as exc:
        _fail(str(exc))
    typer.echo(f"user {address.lower()} enabled")


@app.command()
def orders(
    status: Annotated[
        str | None,
        typer.Option(
            help=(
                "Only orders in this status (queued, deferred, submitted, delivered, "
                "undeliverable, unconfirmed, expired, failed, held)."
            )
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
    show: Annotated[str | None, typer.Option(help="Print the history of this order id.")] = None,
    config: ConfigOpt = None,
) -> None:
    """List recent orders, or show one order's history."""
    engine = _engine(config)
    if show:
        history = run_sync(engine, order_sql.order_history, show)
        if not history:
            _fail(f"no order {show}")
        for at, event, detail in history:
            typer.echo(f"{at:%Y-%m-%d %H:%M:%S} {event:<13} {detail}")
        from bridge.notices.queue import list_notices

        for n in reversed(run_sync(engine, list_notices, None, 50, show)):
            reply = f": {n['error'].splitlines()[-1][:200]}" if n["error"] else ""
            typer.echo(f"notice {n['id']} {n['kind']} to <{n['recipient']}> {n['status']}{reply}")
        return
    for o in run_sync(engine, order_sql.list_orders, status, limit):
        typer.echo(
            f"{o['id']:<16} {o['status']:<13} {o['recipient']:<16} parts={o['parts']} "
            f"attempts={o['attempts']} from={o['sender']} {o['created_at']:%Y-%m-%d %H:%M:%S}"
            + (f"  ({o['error'][:80]})" if o["error"] else "")
        )


@app.command()
def preview(
    file: Annotated[
        Path,
        typer.Argument(
            help="The mail as a .eml file, or - to read it from stdin.", allow_dash=True
        ),
    ],
    to: Annotated[
        str, typer.Option("--to", help="Recipient number, for the national format.")
    ] = "+491701234567",
    sender: Annotated[
        str | None,
        typer.Option("--sender", help="Apply this user's settings (default: the defaults)."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override a setting for this mail, e.g. --set replacement=smart."
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Show exactly what a mail would become as SMS, without sending anything.

    Prints the text after cleaning (and what was removed), the encoding, replaced
    characters, the number of parts and where the text is split.
    """
    from bridge.intake.sms_plan import preview_context
    from bridge.tenants.policy import resolve
    from bridge.tenants.senders import find_sender
    from bridge.text.errors import MimeTooComplex
    from bridge.text.mime import extract

    settings = _settings(config)
    raw = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    levels: list[dict[str, Any]] = [{}, {}, {}]
    if sender:
        found = run_sync(_engine(config), find_sender, sender)
        if found is None:
            _fail(f"no user {sender}; see `mailsms user list`")
        assert found is not None
        levels = [found.customer_settings, found.profile_settings, found.user_settings]
    overrides: dict[str, Any] = {}
    for item in set_ or []:
        key, eq, value = item.partition("=")
        if not eq:
            _fail(f"--set {item}: expected NAME=VALUE")
        overrides[key.strip()] = int(value) if value.strip().isdigit() else value.strip()
    try:
        policy = resolve(settings.defaults.model_dump(), levels[0], levels[1], levels[2], overrides)
    except PolicyError as exc:
        _fail(str(exc))
        return
    try:
        mail = extract(raw)
    except MimeTooComplex as exc:
        _fail(f"the bridge would refuse this mail (554 5.6.0): {exc}")
        return
    ctx = preview_context(raw, policy, to, mail)
    from bridge.notices.render import DEFAULT_TEMPLATES, Renderer

    renderer = Renderer(DEFAULT_TEMPLATES, from_address="-", from_name="-", hostname="-")
    typer.echo(renderer.render_text("preview", ctx), nl=False)


@functools.cache
def assemble() -> typer.Typer:
    """The whole `mailsms` command: this module's commands and every `cli_*` module's."""
    from bridge.cli_inbound import register as register_inbound
    from bridge.cli_intake import register as register_intake
    from bridge.cli_notices import register as register_notices
    from bridge.cli_report import register as register_report
    from bridge.cli_sandbox import register as register_sandbox
    from bridge.cli_settings import register as register_settings
    from dirsync.command import register as register_dirsync

    register_sandbox(app)
    register_settings(app)
    register_report(app)
    register_inbound(app)
    register_intake(app)
    register_notices(app)
    register_dirsync(app)
    _plain_help(app)
    return app


def _plain_help(group: typer.Typer) -> None:
    """Help as click writes it, for `group` and every group below it (Rich's tables show
    a flag as `<bool>` and read `[section]` in a help text as markup)."""
    group.rich_markup_mode = None
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _plain_help(sub.typer_instance)


def main() -> None:
    assemble()()
