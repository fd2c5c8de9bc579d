"""`mailsms login add|list|disable|enable`: SMTP AUTH logins, each for one customer's senders."""

from __future__ import annotations

from typing import Annotated

import typer

from bridge.cli.common import (
    ConfigOpt,
    PasswordEnv,
    PasswordFile,
    administer,
    fail,
    open_database,
    read_password,
)
from bridge.db.store import run_sync
from bridge.tenants.admin import AdminError
from bridge.tenants.logins import (
    add_credential,
    check_login_password,
    list_credentials,
    set_credential_enabled,
)

app = typer.Typer(
    help="SMTP AUTH logins (offered only after STARTTLS); each authorises one customer's senders.",
    no_args_is_help=True,
)


@app.command("add")
def login_add(
    username: str,
    customer: Annotated[str, typer.Option(help="The customer whose senders this login may use.")],
    password_env: PasswordEnv = None,
    password_file: PasswordFile = None,
    config: ConfigOpt = None,
) -> None:
    """Add a login; the password is stored as an scrypt hash (prompted for by default)."""
    password = read_password(password_env, password_file)
    try:
        check_login_password(password)
        run_sync(open_database(config), add_credential, username, customer, password)
    except AdminError as exc:
        fail(str(exc))
    typer.echo(f"login {username} added for customer {customer}")


@app.command("list")
def login_list(config: ConfigOpt = None) -> None:
    """List logins and their customers."""
    for c in run_sync(open_database(config), list_credentials):
        state = "enabled" if c.enabled else "disabled"
        typer.echo(f"{c.username:<32} {c.customer:<20} {state}")


@app.command("disable")
def login_disable(username: str, config: ConfigOpt = None) -> None:
    """Disable a login (AUTH with it fails from now on)."""
    administer(config, set_credential_enabled, username, False)
    typer.echo(f"login {username} disabled")


@app.command("enable")
def login_enable(username: str, config: ConfigOpt = None) -> None:
    """Enable a disabled login again (with the password it had)."""
    administer(config, set_credential_enabled, username, True)
    typer.echo(f"login {username} enabled")
