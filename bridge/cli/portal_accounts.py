"""`mailsms portal-account add|list|disable|enable|password`: who may log in to the portal."""

from __future__ import annotations

from typing import Annotated

import typer

from bridge.cli.common import (
    ConfigOpt,
    PasswordEnv,
    PasswordFile,
    administer,
    open_database,
    read_password,
)
from bridge.db.store import run_sync
from bridge.portal.accounts import add_account, list_accounts, set_enabled, set_password
from bridge.portal.status import Role

app = typer.Typer(
    help="Portal accounts: operators (every customer) and customer admins (one customer).",
    no_args_is_help=True,
)


@app.command("add")
def account_add(
    username: str,
    role: Annotated[
        Role,
        typer.Option(help="operator: every customer; customer_admin: the one --customer."),
    ] = Role.CUSTOMER_ADMIN,
    customer: Annotated[
        str | None, typer.Option(help="The customer a customer admin administers.")
    ] = None,
    password_env: PasswordEnv = None,
    password_file: PasswordFile = None,
    config: ConfigOpt = None,
) -> None:
    """Add an account; the password (10 characters or more) is stored as an scrypt hash.

    Without --password-env or --password-file the password is prompted for, so scripts
    pass it through the environment: `PW=… mailsms portal-account add anna --customer
    acme --password-env PW`.
    """
    password = read_password(password_env, password_file)
    administer(config, add_account, username, role, customer, password)
    whose = "every customer" if role is Role.OPERATOR else f"customer {customer}"
    typer.echo(f"portal account {username.strip().lower()} added ({role.value}, {whose})")


@app.command("list")
def account_list(config: ConfigOpt = None) -> None:
    """List portal accounts: role, customer, state and last login."""
    for a in run_sync(open_database(config), list_accounts):
        state = "enabled" if a.enabled else "disabled"
        last = a.last_login_at.isoformat(timespec="seconds") if a.last_login_at else "never"
        who = a.customer or "*"
        typer.echo(f"{a.username:<32} {a.role.value:<15} {who:<20} {state:<9} last login {last}")


@app.command("disable")
def account_disable(username: str, config: ConfigOpt = None) -> None:
    """Disable an account; its sessions end at once."""
    administer(config, set_enabled, username, False)
    typer.echo(f"portal account {username} disabled")


@app.command("enable")
def account_enable(username: str, config: ConfigOpt = None) -> None:
    """Enable a disabled account again (and lift a lockout)."""
    administer(config, set_enabled, username, True)
    typer.echo(f"portal account {username} enabled")


@app.command("password")
def account_password(
    username: str,
    password_env: PasswordEnv = None,
    password_file: PasswordFile = None,
    config: ConfigOpt = None,
) -> None:
    """Set a new password; this lifts a lockout and ends the account's sessions."""
    password = read_password(password_env, password_file)
    administer(config, set_password, username, password)
    typer.echo(f"portal account {username} has a new password")
