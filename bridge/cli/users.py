"""`mailsms user add|list|disable|enable`: the mail addresses that may send SMS."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from bridge.cli.common import ConfigOpt, administer, fail, open_database
from bridge.db.store import run_sync
from bridge.tenants.admin import add_user, list_users, set_user_enabled

app = typer.Typer(help="Users: the mail addresses that may send SMS.", no_args_is_help=True)


@app.command("add")
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
            fail("--notify: expected none, failures or all")
        settings["notify"] = notify
    if sender_id:
        settings["sender_id"] = sender_id
    administer(config, add_user, address, customer, display_name=name, settings=settings)
    typer.echo(f"user {address.lower()} added to {customer}")


@app.command("list")
def user_list(
    customer: Annotated[str | None, typer.Option(help="Only this customer's users.")] = None,
    config: ConfigOpt = None,
) -> None:
    """List users."""
    for u in run_sync(open_database(config), list_users, customer):
        state = "enabled" if u.enabled else "disabled"
        typer.echo(f"{u.address:<36} {u.customer:<16} {state:<9} {u.origin:<8} {u.display_name}")


@app.command("disable")
def user_disable(address: str, config: ConfigOpt = None) -> None:
    """Stop ADDRESS from sending SMS (its history stays)."""
    administer(config, set_user_enabled, address, False)
    typer.echo(f"user {address.lower()} disabled")


@app.command("enable")
def user_enable(address: str, config: ConfigOpt = None) -> None:
    """Allow a disabled ADDRESS to send SMS again."""
    administer(config, set_user_enabled, address, True)
    typer.echo(f"user {address.lower()} enabled")
