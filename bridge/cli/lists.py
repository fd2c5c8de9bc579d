"""`mailsms list add|show|members|add-member|remove-member|import`: distribution lists
(mail to <list>@<domain> goes to every member) and their members."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from bridge.cli.common import ConfigOpt, fail, open_database, read_file, read_settings
from bridge.db.store import run_sync
from bridge.lists.store import (
    ListError,
    Member,
    create_list,
    get_list,
    list_lists,
    list_members,
    put_members,
    remove_members,
)
from bridge.provision.file import TenantsError, parse_members_csv

app = typer.Typer(help="Distribution lists: mail to <list>@<domain>.", no_args_is_help=True)

ListCustomer = Annotated[str, typer.Option("--customer", help="The customer owning the list.")]


@app.command("add")
def list_add(
    name: str,
    customer: ListCustomer,
    fields: Annotated[str, typer.Option(help="Custom placeholder fields, comma-separated.")] = "",
    description: Annotated[str, typer.Option(help="What the list is for.")] = "",
    config: ConfigOpt = None,
) -> None:
    """Create the list NAME (mail to NAME@<domain> goes to every member)."""
    names = [f.strip() for f in fields.split(",") if f.strip()]
    try:
        run_sync(open_database(config), create_list, customer, name, names, description)
    except ListError as exc:
        fail(str(exc))
    typer.echo(f"list {name.lower()} added to {customer}")


@app.command("show")
def list_show(customer: ListCustomer, config: ConfigOpt = None) -> None:
    """The customer's lists with their member counts and fields."""
    try:
        lists = run_sync(open_database(config), list_lists, customer)
    except ListError as exc:
        fail(str(exc))
    for info in lists:
        typer.echo(f"{info.name:<24} members={info.members:<7} fields={','.join(info.fields)}")


@app.command("members")
def list_members_cmd(name: str, customer: ListCustomer, config: ConfigOpt = None) -> None:
    """The members of a list (a stopped number is marked)."""
    engine = open_database(config)
    try:
        info = run_sync(engine, get_list, customer, name)
    except ListError as exc:
        fail(str(exc))
    for m in run_sync(engine, list_members, info.id, info.customer_id):
        extra = json.dumps(m.fields, ensure_ascii=False) if m.fields else ""
        stop = " STOPPED" if m.stopped else ""
        typer.echo(f"{m.msisdn:<16} {m.name:<30} {extra}{stop}")


@app.command("add-member")
def list_add_member(
    name: str,
    msisdn: str,
    customer: ListCustomer,
    first_name: Annotated[str, typer.Option(help="For {first_name}.")] = "",
    last_name: Annotated[str, typer.Option(help="For {last_name}.")] = "",
    field: Annotated[list[str] | None, typer.Option(help="A custom field, NAME=VALUE.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Add (or update) one member."""
    line = "msisdn,first_name,last_name\n" + f"{msisdn},{first_name},{last_name}\n"
    _import(name, customer, line, dict(f.partition("=")[::2] for f in field or []), False, config)


@app.command("remove-member")
def list_remove_member(
    name: str, msisdn: str, customer: ListCustomer, config: ConfigOpt = None
) -> None:
    """Remove one member (by number, E.164)."""
    engine = open_database(config)
    try:
        info = run_sync(engine, get_list, customer, name)
    except ListError as exc:
        fail(str(exc))
    removed = run_sync(engine, remove_members, info.id, [msisdn])
    typer.echo(f"removed {removed} member(s)")


@app.command("import")
def list_import(
    name: str,
    csv_file: Annotated[Path, typer.Argument(help="CSV: msisdn,first_name,last_name,…")],
    customer: ListCustomer,
    replace: Annotated[bool, typer.Option(help="Remove members not in the file.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Import members from a CSV (header row; other columns become custom fields)."""
    _import(name, customer, read_file(csv_file), {}, replace, config)


def _import(
    name: str, customer: str, text: str, extra: dict[str, str], replace: bool, config: Path | None
) -> None:
    settings = read_settings(config)
    engine = open_database(config)
    try:
        info = run_sync(engine, get_list, customer, name)
        members = parse_members_csv(text, settings.defaults.default_country)
    except ListError as exc:
        fail(str(exc))
    except TenantsError as exc:
        for problem in exc.problems[:20]:
            typer.echo(f"mailsms: {problem}", err=True)
        raise typer.Exit(1) from None
    if extra:
        members = [
            Member(m.msisdn, m.first_name, m.last_name, {**(m.fields or {}), **extra})
            for m in members
        ]
    added, updated, removed = run_sync(engine, put_members, info.id, members, replace=replace)
    typer.echo(f"list {info.name}: +{added} added, ~{updated} updated, -{removed} removed")
