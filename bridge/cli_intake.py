"""`mailsms login` and `mailsms customer access`: SMTP AUTH logins and who may connect how."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from bridge.cli import ConfigOpt, _engine, customer_app
from bridge.store.access import get_access, set_access
from bridge.store.admin import AdminError
from bridge.store.credentials import add_credential, list_credentials, set_credential_enabled
from bridge.store.store import run_sync

login_app = typer.Typer(
    help="SMTP AUTH logins (offered only after STARTTLS); each authorises one customer's senders.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add `login …` to `app` and `access` to its `customer` group."""
    app.add_typer(login_app, name="login")

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
        any_network: Annotated[
            bool, typer.Option(help="Allow every client network again.")
        ] = False,
        require_tls: Annotated[
            bool | None, typer.Option(help="Refuse MAIL over plaintext for this customer (530).")
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
        config: ConfigOpt = None,
    ) -> None:
        """Show or change a customer's access rules."""
        changes: dict[str, Any] = {}
        if network:
            changes["networks"] = list(network)
        if any_network:
            changes["networks"] = []
        for key, value in (
            ("require_tls", require_tls),
            ("premium", premium),
            ("short_codes", short_codes),
            ("sequential_run", sequential_run),
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
