"""`mailsms login`, `mailsms customer access` and `mailsms held`: who may send how, held orders.

`held` lists the orders held for review (SMS pumping protection, or after an
unexpected error) and releases them for sending or refuses them for good.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from bridge.cli import ConfigOpt, _engine, customer_app
from bridge.db.clock import utcnow
from bridge.db.store import run_sync
from bridge.intake.access_store import get_access, set_access
from bridge.intake.velocity_store import held_orders, refuse_orders, release_orders
from bridge.outcomes.steps import STEPS
from bridge.tenants.admin import AdminError
from bridge.tenants.logins import add_credential, list_credentials, set_credential_enabled

login_app = typer.Typer(
    help="SMTP AUTH logins (offered only after STARTTLS); each authorises one customer's senders.",
    no_args_is_help=True,
)


held_app = typer.Typer(
    help="Orders held for review (SMS pumping protection, unexpected errors): list, release, "
    "refuse.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add `login …` and `held …` to `app` and `access` to its `customer` group."""
    app.add_typer(login_app, name="login")
    app.add_typer(held_app, name="held")

    def fail(message: str) -> None:
        typer.echo(f"mailsms: {message}", err=True)
        raise typer.Exit(1)

    @login_app.command("add")
    def login_add(
        username: str,
        customer: Annotated[
            str, typer.Option(help="The customer whose senders this login may use.")
        ],
        password_env: Annotated[
            str | None, typer.Option(help="Read the password from this environment variable.")
        ] = None,
        password_file: Annotated[
            Path | None, typer.Option(help="Read the password from this file.", exists=True)
        ] = None,
        config: ConfigOpt = None,
    ) -> None:
        """Add a login; the password is stored as an scrypt hash (prompted for by default)."""
        if password_env:
            if password_env not in os.environ:
                fail(f"environment variable {password_env} is not set")
            password = os.environ[password_env]
        elif password_file:
            password = password_file.read_text(encoding="utf-8").strip()
        else:
            password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        if len(password) < 10:
            fail("the password must have at least 10 characters")
        try:
            run_sync(_engine(config), add_credential, username, customer, password)
        except AdminError as exc:
            fail(str(exc))
        typer.echo(f"login {username} added for customer {customer}")

    @login_app.command("list")
    def login_list(config: ConfigOpt = None) -> None:
        """List logins and their customers."""
        for c in run_sync(_engine(config), list_credentials):
            state = "enabled" if c.enabled else "disabled"
            typer.echo(f"{c.username:<32} {c.customer:<20} {state}")

    @login_app.command("disable")
    def login_disable(username: str, config: ConfigOpt = None) -> None:
        """Disable a login (AUTH with it fails from now on)."""
        try:
            run_sync(_engine(config), set_credential_enabled, username, False)
        except AdminError as exc:
            fail(str(exc))
        typer.echo(f"login {username} disabled")

    @customer_app.command("access")
    def customer_access(
        name: str,
        network: Annotated[
            list[str] | None,
            typer.Option(
                help="Client network (CIDR) allowed to send for this customer; repeatable."
            ),
        ] = None,
        no_networks: Annotated[
            bool,
            typer.Option(
                "--no-networks", help="Remove the client networks: then only AUTH can send."
            ),
        ] = False,
        require_tls: Annotated[
            bool | None, typer.Option(help="Refuse MAIL over plaintext for this customer (530).")
        ] = None,
        require_auth: Annotated[
            bool | None,
            typer.Option(help="Require SMTP AUTH even from the client networks (530)."),
        ] = None,
        premium: Annotated[
            bool | None, typer.Option(help="Allow premium-rate / shared-cost destinations.")
        ] = None,
        short_codes: Annotated[
            bool | None, typer.Option(help="Allow short codes as destinations.")
        ] = None,
        sequential_run: Annotated[
            int | None,
            typer.Option(help="Refuse a mail to this many consecutive numbers (0: never)."),
        ] = None,
        velocity_numbers: Annotated[
            int | None,
            typer.Option(
                help="Hold orders when more distinct numbers than this share one prefix "
                "within the velocity window (0: never)."
            ),
        ] = None,
        velocity_window: Annotated[
            float | None, typer.Option(help="The velocity window in seconds.")
        ] = None,
        velocity_suffix_digits: Annotated[
            int | None,
            typer.Option(help="The prefix is the number without this many last digits."),
        ] = None,
        watch_numbers: Annotated[
            int | None,
            typer.Option(
                help="Hold orders when more distinct numbers than this go to watched "
                "destinations within the window (0: never)."
            ),
        ] = None,
        watch_prefix: Annotated[
            list[str] | None,
            typer.Option(help="A watched destination prefix such as +234; repeatable."),
        ] = None,
        config: ConfigOpt = None,
    ) -> None:
        """Show or change a customer's access rules.

        A customer's users may send from its client networks (--network) or after AUTH
        with one of its logins; --require-auth asks for AUTH even from its networks.

        With --no-networks and no login nobody can send for the customer; a network such
        as 0.0.0.0/0 without --require-auth opens it to the world (and is warned about).
        """
        changes: dict[str, Any] = {}
        if network:
            changes["networks"] = list(network)
        if no_networks:
            changes["networks"] = []
        if watch_prefix:
            changes["watch_prefixes"] = list(watch_prefix)
        for key, value in (
            ("require_tls", require_tls),
            ("require_auth", require_auth),
            ("premium", premium),
            ("short_codes", short_codes),
            ("sequential_run", sequential_run),
            ("velocity_numbers", velocity_numbers),
            ("velocity_window", velocity_window),
            ("velocity_suffix_digits", velocity_suffix_digits),
            ("watch_numbers", watch_numbers),
        ):
            if value is not None:
                changes[key] = value
        engine = _engine(config)
        try:
            access = (
                run_sync(engine, set_access, name, changes)
                if changes
                else run_sync(engine, get_access, name)
            )
        except AdminError as exc:
            fail(str(exc))
            return
        typer.echo(json.dumps(access, indent=2, sort_keys=True))

    @held_app.command("list")
    def held_list(
        customer: Annotated[str | None, typer.Option(help="Only this customer's orders.")] = None,
        mail: Annotated[str | None, typer.Option(help="Only the orders of this mail id.")] = None,
        config: ConfigOpt = None,
    ) -> None:
        """List held orders with why they are held."""
        rows = run_sync(_engine(config), held_orders, customer, mail)
        if not rows:
            typer.echo("no held orders")
        for o in rows:
            reason = (o["error"] or "").strip().splitlines()
            typer.echo(
                f"{o['id']:<18} {o['created_at']:%Y-%m-%d %H:%M:%S} {o['recipient']:<16} "
                f"{o['customer']:<16} {o['sender']}  ({reason[-1][:100] if reason else ''})"
            )

    def _selected(
        config: Path | None, ids: list[str] | None, customer: str | None, mail: str | None
    ) -> list[str]:
        """The held orders named by id and/or selected by customer and mail."""
        if not ids and customer is None and mail is None:
            fail("name order ids, or select with --customer or --mail")
        found = [o["id"] for o in run_sync(_engine(config), held_orders, customer, mail)]
        return [i for i in found if not ids or i in ids]

    @held_app.command("release")
    def held_release(
        order_ids: Annotated[list[str] | None, typer.Argument(help="Order ids.")] = None,
        customer: Annotated[str | None, typer.Option(help="All of this customer's.")] = None,
        mail: Annotated[str | None, typer.Option(help="All of this mail's.")] = None,
        config: ConfigOpt = None,
    ) -> None:
        """Send held orders after all (they are queued again now)."""
        ids = _selected(config, order_ids, customer, mail)
        done = run_sync(_engine(config), release_orders, ids, utcnow())
        typer.echo(f"{done} order(s) released")

    @held_app.command("refuse")
    def held_refuse(
        order_ids: Annotated[list[str] | None, typer.Argument(help="Order ids.")] = None,
        customer: Annotated[str | None, typer.Option(help="All of this customer's.")] = None,
        mail: Annotated[str | None, typer.Option(help="All of this mail's.")] = None,
        config: ConfigOpt = None,
    ) -> None:
        """Never send held orders: they fail, and their senders get the usual notice."""
        ids = _selected(config, order_ids, customer, mail)
        done = run_sync(_engine(config), refuse_orders, ids, utcnow(), steps=STEPS)
        typer.echo(f"{done} order(s) refused")
