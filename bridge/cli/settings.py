"""`mailsms settings show|set|unset` and `mailsms apply`: the settings cascade and tenants files.

`settings show` prints every effective value with the level it came from; `settings
set/unset` change one level; `apply` brings customers, profiles, users and lists to a
tenants file's state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from bridge.cli.common import ConfigOpt, fail, open_database, read_settings
from bridge.db.store import run_sync
from bridge.provision.apply import apply_file, change_setting
from bridge.provision.file import TenantsError, load_tenants
from bridge.tenants.policy import PolicyError, check_setting, describe, resolve
from bridge.tenants.policy_values import parse_text
from bridge.tenants.senders import find_sender

app = typer.Typer(
    help="The settings cascade: defaults → customer → profile → user → mail.",
    no_args_is_help=True,
)

CustomerOpt = Annotated[str | None, typer.Option("--customer", help="A customer's setting.")]
ProfileOpt = Annotated[
    str | None, typer.Option("--profile", help="A profile's setting, as CUSTOMER/PROFILE.")
]
UserOpt = Annotated[str | None, typer.Option("--user", help="A user's setting (address).")]


def _show_value(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(value) if value else "(none)"
    if isinstance(value, str):
        return json.dumps(value) if value in ("", "\n") or value.strip() != value else value
    return str(value)


@app.command("show")
def settings_show(
    user_or_address: Annotated[str, typer.Argument(help="A user's address (or alias).")],
    config: ConfigOpt = None,
) -> None:
    """Print the effective policy of a user and, for each value, the level it came from."""
    settings = read_settings(config)
    sender = run_sync(open_database(config), find_sender, user_or_address)
    if sender is None:
        fail(f"no user {user_or_address}; see `mailsms user list`")
    try:
        policy = resolve(
            settings.defaults.model_dump(),
            sender.customer_settings,
            sender.profile_settings,
            sender.user_settings,
        )
    except PolicyError as exc:
        fail(f"a stored setting is invalid: {exc}")
    typer.echo(f"effective settings of {sender.address}")
    typer.echo(f"{'setting':<20} {'value':<40} source")
    for name, value, source in describe(policy):
        typer.echo(f"{name:<20} {_show_value(value):<40} {source}")


def _level(customer: str | None, profile: str | None, user: str | None) -> tuple[str, str]:
    given = [(lvl, v) for lvl, v in (("customer", customer), ("profile", profile), ("user", user))]
    chosen = [(lvl, v) for lvl, v in given if v]
    if len(chosen) != 1:
        fail("name exactly one level: --customer NAME, --profile CUSTOMER/PROFILE or --user ADDR")
    return chosen[0][0], str(chosen[0][1])


@app.command("set")
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
        fail(str(exc))
    stored = list(checked) if isinstance(checked, tuple) else checked
    try:
        run_sync(open_database(config), change_setting, level, target, key, stored)
    except TenantsError as exc:
        fail(str(exc))
    typer.echo(f"{level} {target}: {key} = {_show_value(checked)}")


@app.command("unset")
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
        run_sync(open_database(config), change_setting, level, target, key, None)
    except TenantsError as exc:
        fail(str(exc))
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
        country = read_settings(config).defaults.default_country
        spec, members = load_tenants(file, default_country=country)
        changes = apply_file(open_database(config), spec, members, dry_run)
    except TenantsError as exc:
        for problem in exc.problems:
            typer.echo(f"mailsms: {problem}", err=True)
        raise typer.Exit(1) from None
    for line in changes:
        typer.echo(line)
    verb = "would change" if dry_run else "changed"
    typer.echo(f"{verb} {len(changes)} object(s)" if changes else "no changes")
