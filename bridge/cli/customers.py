"""`mailsms customer add|list|access`: customers and who may send for them, and how."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from bridge.cli.common import ConfigOpt, administer, fail, open_database
from bridge.db.store import run_sync
from bridge.intake.access import check_cidrs
from bridge.intake.access_store import get_access, set_access
from bridge.tenants.admin import AdminError, add_customer, list_customers

app = typer.Typer(
    help="Customers (companies; the top of the settings cascade).", no_args_is_help=True
)


@app.command("add")
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
            fail(f"--network: {exc}")
    administer(config, add_customer, name, settings)
    typer.echo(f"customer {name} added")
    if network:
        typer.echo(f"its users may send from {', '.join(network)}")
    else:
        typer.echo(
            "its users cannot send yet: allow its mail servers with "
            f"`mailsms customer access {name} --network CIDR`, or add a login for SMTP "
            f"AUTH with `mailsms login add LOGIN --customer {name}`"
        )


@app.command("list")
def customer_list(config: ConfigOpt = None) -> None:
    """List customers with their number of users."""
    for c in run_sync(open_database(config), list_customers):
        typer.echo(
            f"{c.name:<24} {'enabled' if c.enabled else 'disabled':<9} "
            f"users={c.users:<6} {json.dumps(c.settings)}"
        )


@app.command("access")
def customer_access(
    name: str,
    network: Annotated[
        list[str] | None,
        typer.Option(help="Client network (CIDR) allowed to send for this customer; repeatable."),
    ] = None,
    no_networks: Annotated[
        bool,
        typer.Option("--no-networks", help="Remove the client networks: then only AUTH can send."),
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
    engine = open_database(config)
    try:
        access = (
            run_sync(engine, set_access, name, changes)
            if changes
            else run_sync(engine, get_access, name)
        )
    except AdminError as exc:
        fail(str(exc))
    typer.echo(json.dumps(access, indent=2, sort_keys=True))
