"""The `mailsms` command: serve the bridge and administer it.

Subcommands cover the database, customers, users, orders and the sandbox SMSC.

Every command takes `-c/--config FILE`; without it the embedded default applies
(SQLite in `var/`, the sandbox SMSC, notices to `var/maildir/`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bridge import __version__
from bridge.errors import ConfigError
from bridge.policy import PolicyError
from bridge.settings import Settings, load_settings
from bridge.store import db
from bridge.store import orders as order_sql
from bridge.store.admin import (
    AdminError,
    add_customer,
    add_user,
    list_customers,
    list_users,
    set_user_enabled,
)
from bridge.store.store import run_sync

app = typer.Typer(
    help=(
        "E-mail ⇄ SMS bridge: mail to <number>@<domain> becomes an SMS; "
        "receipts and replies come back by mail."
    ),
    no_args_is_help=True,
    add_completion=False,
)
config_app = typer.Typer(help="Show configuration.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
customer_app = typer.Typer(
    help="Customers (companies; the top of the settings cascade).", no_args_is_help=True
)
user_app = typer.Typer(help="Users: the mail addresses that may send SMS.", no_args_is_help=True)
sandbox_app = typer.Typer(
    help="The built-in sandbox SMSC: see what phones received, text the bridge.",
    no_args_is_help=True,
)
app.add_typer(config_app, name="config")
app.add_typer(db_app, name="db")
app.add_typer(customer_app, name="customer")
app.add_typer(user_app, name="user")
app.add_typer(sandbox_app, name="sandbox")

ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="Settings file (TOML). Default: the embedded default (SQLite, sandbox SMSC).",
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


def _engine(config: Path | None) -> Engine:
    """The migrated database of these settings, or a one-line error and exit status 1."""
    settings = _settings(config)
    try:
        engine = db.open_engine(settings.database_url)
        db.upgrade(engine)
    except ConfigError as exc:
        typer.echo(f"mailsms: {exc}", err=True)
        raise typer.Exit(2) from None
    except (SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        typer.echo(f"mailsms: cannot open the database ({reason}); check database_url", err=True)
        raise typer.Exit(1) from None
    return engine


def _fail(message: str) -> None:
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


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@config_app.command("example")
def config_example() -> None:
    """Print a fully commented example settings file (also in examples/bridge.toml)."""
    typer.echo(
        resources.files("bridge").joinpath("example.toml").read_text(encoding="utf-8"), nl=False
    )


@config_app.command("check")
def config_check(config: ConfigOpt = None) -> None:
    """Validate a settings file and print the effective settings as JSON."""
    typer.echo(json.dumps(_settings(config).model_dump(mode="json"), indent=2))


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None) -> None:
    """Create or migrate the database schema to the newest version (serve does this too)."""
    engine = _engine(config)
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
    config: ConfigOpt = None,
) -> None:
    """Add a customer."""
    settings: dict[str, Any] = {"default_country": country.upper()}
    if sender_id:
        settings["sender_id"] = sender_id
    try:
        run_sync(_engine(config), add_customer, name, settings)
    except AdminError as exc:
        _fail(str(exc))
    typer.echo(f"customer {name} added")


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
    from bridge.intake.compose import preview_context
    from bridge.policy import resolve
    from bridge.store.intake import find_sender
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


@sandbox_app.command("inbox")
def sandbox_inbox(
    to: Annotated[str | None, typer.Option("--to", help="Only SMS to this number.")] = None,
    config: ConfigOpt = None,
) -> None:
    """List the SMS the sandbox's phones received (number, text, parts, encoding)."""
    from bridge.transports.sandbox import read_inbox

    settings = _settings(config)
    messages = read_inbox(settings.sandbox.inbox, to)
    if not messages:
        typer.echo("no SMS received" + (f" by {to}" if to else ""))
    for m in messages:
        typer.echo(
            f"{m.received_at}  to {m.destination}  from {m.source}  {m.parts} part(s) {m.encoding}"
        )
        typer.echo(f"    {m.text}")


@sandbox_app.command("send")
def sandbox_send(
    text: str,
    source: Annotated[
        str, typer.Option("--from", help="The phone number that texts (e.g. +491701234567).")
    ],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help=(
                "The bridge number it texts; default: whoever last texted this phone "
                "(like a phone's Reply button)."
            ),
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Text the bridge from a sandbox phone (an MO SMS) while `mailsms serve` runs."""
    from bridge.transports.sandbox_phone import SandboxError, send_mo

    settings = _settings(config)
    if not settings.sandbox.enabled:
        _fail("the sandbox is not enabled in these settings ([sandbox] enabled = true)")
    try:
        asyncio.run(
            send_mo(
                settings.sandbox.host,
                settings.sandbox.port,
                source,
                to,
                text,
                settings.sandbox.inbox,
            )
        )
    except (OSError, ValueError, SandboxError) as exc:
        _fail(str(exc))
    typer.echo(f"sent from {source}")


def main() -> None:
    from bridge.cli_inbound import register as register_inbound
    from bridge.cli_intake import register as register_intake
    from bridge.cli_report import register as register_report
    from bridge.cli_settings import register as register_settings
    from dirsync.command import register as register_dirsync

    register_settings(app)
    register_report(app)
    register_inbound(app)
    register_intake(app)
    register_dirsync(app)
    app()
