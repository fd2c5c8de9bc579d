"""The `mailsms settings`, `mailsms apply` and `mailsms list` commands: tenants and their lists.

`settings show` prints every effective value with the level it came from; `settings
set/unset` change one level; `apply` brings customers, profiles, users and lists to a
tenants file's state; `list …` manages distribution lists and their members.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from bridge.cli import ConfigOpt, _engine, _fail, _settings
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
from bridge.provision.apply import apply_file, change_setting
from bridge.provision.file import TenantsError, load_tenants, parse_members_csv
from bridge.tenants.policy import PolicyError, check_setting, describe, resolve
from bridge.tenants.policy_values import parse_text
from bridge.tenants.senders import find_sender

settings_app = typer.Typer(
    help="The settings cascade: defaults → customer → profile → user → mail.",
    no_args_is_help=True,
)
list_app = typer.Typer(help="Distribution lists: mail to <list>@<domain>.", no_args_is_help=True)

CustomerOpt = Annotated[str | None, typer.Option("--customer", help="A customer's setting.")]
ProfileOpt = Annotated[
    str | None, typer.Option("--profile", help="A profile's setting, as CUSTOMER/PROFILE.")
]
UserOpt = Annotated[str | None, typer.Option("--user", help="A user's setting (address).")]
ListCustomer = Annotated[str, typer.Option("--customer", help="The customer owning the list.")]


def _show_value(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(value) if value else "(none)"
    if isinstance(value, str):
        return json.dumps(value) if value in ("", "\n") or value.strip() != value else value
    return str(value)


@settings_app.command("show")
def settings_show(
    user_or_address: Annotated[str, typer.Argument(help="A user's address (or alias).")],
    config: ConfigOpt = None,
) -> None:
    """Print the effective policy of a user and, for each value, the level it came from."""
    settings = _settings(config)
    sender = run_sync(_engine(config), find_sender, user_or_address)
    if sender is None:
        _fail(f"no user {user_or_address}; see `mailsms user list`")
        return
    try:
        policy = resolve(
            settings.defaults.model_dump(),
            sender.customer_settings,
            sender.profile_settings,
            sender.user_settings,
        )
    except PolicyError as exc:
        _fail(f"a stored setting is invalid: {exc}")
        return
    typer.echo(f"effective settings of {sender.address}")
    typer.echo(f"{'setting':<20} {'value':<40} source")
    for name, value, source in describe(policy):
        typer.echo(f"{name:<20} {_show_value(value):<40} {source}")


def _level(customer: str | None, profile: str | None, user: str | None) -> tuple[str, str]:
    given = [(lvl, v) for lvl, v in (("customer", customer), ("profile", profile), ("user", user))]
    chosen = [(lvl, v) for lvl, v in given if v]
    if len(chosen) != 1:
        _fail("name exactly one level: --customer NAME, --profile CUSTOMER/PROFILE or --user ADDR")
    return chosen[0][0], str(chosen[0][1])


@settings_app.command("set")
def settings_set(
    key: str,
    value: str,
    customer: CustomerOpt = None,
    profile: ProfileOpt = None,
    user: UserOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Set KEY to VALUE at one level (lists comma-separated, e.g. cleaning=quotes,signature)."""
    level, target = _level(customer, profile, user)
    try:
        checked = check_setting(key, parse_text(key, value), level)
    except PolicyError as exc:
        _fail(str(exc))
        return
    stored = list(checked) if isinstance(checked, tuple) else checked
    try:
        run_sync(_engine(config), change_setting, level, target, key, stored)
    except TenantsError as exc:
        _fail(str(exc))
    typer.echo(f"{level} {target}: {key} = {_show_value(checked)}")


@settings_app.command("unset")
def settings_unset(
    key: str,
    customer: CustomerOpt = None,
    profile: ProfileOpt = None,
    user: UserOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Remove KEY from one level, so the level above applies again."""
    level, target = _level(customer, profile, user)
    try:
        run_sync(_engine(config), change_setting, level, target, key, None)
    except TenantsError as exc:
        _fail(str(exc))
    typer.echo(f"{level} {target}: {key} unset")


def apply(
    file: Annotated[Path, typer.Argument(help="The tenants file (TOML).", exists=True)],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show changes, change nothing.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Bring customers, profiles, users and lists to the state a tenants file describes."""
    try:
        spec, members = load_tenants(file)
        changes = apply_file(_engine(config), spec, members, dry_run)
    except TenantsError as exc:
        for problem in exc.problems:
            typer.echo(f"mailsms: {problem}", err=True)
        raise typer.Exit(1) from None
    for line in changes:
        typer.echo(line)
    verb = "would change" if dry_run else "changed"
    typer.echo(f"{verb} {len(changes)} object(s)" if changes else "no changes")


@list_app.command("add")
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
        run_sync(_engine(config), create_list, customer, name, names, description)
    except ListError as exc:
        _fail(str(exc))
    typer.echo(f"list {name.lower()} added to {customer}")


@list_app.command("show")
def list_show(customer: ListCustomer, config: ConfigOpt = None) -> None:
    """The customer's lists with their member counts and fields."""
    try:
        lists = run_sync(_engine(config), list_lists, customer)
    except ListError as exc:
        _fail(str(exc))
        return
    for info in lists:
        typer.echo(f"{info.name:<24} members={info.members:<7} fields={','.join(info.fields)}")


@list_app.command("members")
def list_members_cmd(name: str, customer: ListCustomer, config: ConfigOpt = None) -> None:
    """The members of a list (a stopped number is marked)."""
    engine = _engine(config)
    try:
        info = run_sync(engine, get_list, customer, name)
    except ListError as exc:
        _fail(str(exc))
        return
    for m in run_sync(engine, list_members, info.id, info.customer_id):
        extra = json.dumps(m.fields, ensure_ascii=False) if m.fields else ""
        stop = " STOPPED" if m.stopped else ""
        typer.echo(f"{m.msisdn:<16} {m.name:<30} {extra}{stop}")


@list_app.command("add-member")
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


@list_app.command("remove-member")
def list_remove_member(
    name: str, msisdn: str, customer: ListCustomer, config: ConfigOpt = None
) -> None:
    """Remove one member (by number, E.164)."""
    engine = _engine(config)
    try:
        info = run_sync(engine, get_list, customer, name)
    except ListError as exc:
        _fail(str(exc))
        return
    removed = run_sync(engine, remove_members, info.id, [msisdn])
    typer.echo(f"removed {removed} member(s)")


@list_app.command("import")
def list_import(
    name: str,
    csv_file: Annotated[Path, typer.Argument(help="CSV: msisdn,first_name,last_name,…")],
    customer: ListCustomer,
    replace: Annotated[bool, typer.Option(help="Remove members not in the file.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Import members from a CSV (header row; other columns become custom fields)."""
    _import(name, customer, csv_file.read_text(encoding="utf-8"), {}, replace, config)


def _import(
    name: str, customer: str, text: str, extra: dict[str, str], replace: bool, config: Path | None
) -> None:
    settings = _settings(config)
    engine = _engine(config)
    try:
        info = run_sync(engine, get_list, customer, name)
        members = parse_members_csv(text, settings.defaults.default_country)
    except ListError as exc:
        _fail(str(exc))
        return
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


def register(app: typer.Typer) -> None:
    """Add `settings`, `apply` and `list` to the `mailsms` command."""
    app.add_typer(settings_app, name="settings")
    app.add_typer(list_app, name="list")
    app.command("apply")(apply)
