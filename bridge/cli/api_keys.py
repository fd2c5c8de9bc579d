"""`mailsms api-key add|list|revoke`: the REST API's keys per customer."""

from __future__ import annotations

from typing import Annotated

import typer

from bridge.api.keys import add_key, list_keys, revoke_key
from bridge.cli.common import ConfigOpt, administer, open_database
from bridge.db.store import run_sync

app = typer.Typer(
    help="API keys: applications send SMS through the REST API (/api/v1) with them.",
    no_args_is_help=True,
)


@app.command("add")
def key_add(
    name: Annotated[str, typer.Argument(help="A name for the key, e.g. erp-prod.")],
    customer: Annotated[str, typer.Option(help="The customer the key belongs to.")],
    user: Annotated[
        str | None,
        typer.Option(help="The user (mail address) whose SMS these are; default: the only one."),
    ] = None,
    network: Annotated[
        list[str] | None,
        typer.Option(help="A client network (CIDR) the key may be used from; repeatable."),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Create a key and print it once: it is stored hashed and cannot be shown again."""
    token = administer(config, lambda conn: add_key(conn, customer, name, user, network or ()))
    typer.echo(token)
    typer.echo(
        f"API key {name!r} of {customer}: keep it now, it is not shown again "
        "(send it as 'Authorization: Bearer <key>')",
        err=True,
    )


@app.command("list")
def key_list(
    customer: Annotated[str | None, typer.Option(help="Only this customer's keys.")] = None,
    config: ConfigOpt = None,
) -> None:
    """List keys: customer, name, user, networks, created, revoked (never the key)."""
    for k in run_sync(open_database(config), list_keys, customer):
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
        typer.echo(
            f"{k.customer:<16} {k.name:<20} {k.user:<28} msk_{k.key_id}_… "
            f"networks={','.join(k.networks) or 'any'} created {k.created_at:%Y-%m-%d} {state}"
        )


@app.command("revoke")
def key_revoke(
    name: str,
    customer: Annotated[str, typer.Option(help="The customer the key belongs to.")],
    config: ConfigOpt = None,
) -> None:
    """Revoke a key: requests with it are refused from now on."""
    administer(config, revoke_key, customer, name)
    typer.echo(f"API key {name!r} of {customer} revoked")
