"""`mailsms preview`: what a mail would become as SMS, without sending anything."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from bridge.cli.common import ConfigOpt, fail, open_database, read_file_bytes, read_settings
from bridge.db.store import run_sync
from bridge.intake.sms_plan import preview_context
from bridge.notices.render import DEFAULT_TEMPLATES, Renderer
from bridge.tenants.policy import PolicyError, resolve
from bridge.tenants.senders import find_sender
from bridge.text.errors import MimeTooComplex
from bridge.text.mime import extract


def preview(
    file: Annotated[
        Path,
        typer.Argument(
            help="The mail as a .eml file, or - to read it from stdin.", allow_dash=True
        ),
    ],
    to: Annotated[
        str, typer.Option("--to", help="Recipient number, for the national format.")
    ] = "+491701234567",
    sender: Annotated[
        str | None,
        typer.Option("--sender", help="Apply this user's settings (default: the defaults)."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Override a setting for this mail, e.g. --set replacement=smart."
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Show exactly what a mail would become as SMS, without sending anything.

    Prints the text after cleaning (and what was removed), the encoding, replaced
    characters, the number of parts and where the text is split.
    """
    settings = read_settings(config)
    raw = sys.stdin.buffer.read() if str(file) == "-" else read_file_bytes(file)
    levels: list[dict[str, Any]] = [{}, {}, {}]
    if sender:
        found = run_sync(open_database(config), find_sender, sender)
        if found is None:
            fail(f"no user {sender}; see `mailsms user list`")
        levels = [found.customer_settings, found.profile_settings, found.user_settings]
    overrides: dict[str, Any] = {}
    for item in set_ or []:
        key, eq, value = item.partition("=")
        if not eq:
            fail(f"--set {item}: expected NAME=VALUE")
        overrides[key.strip()] = int(value) if value.strip().isdigit() else value.strip()
    try:
        policy = resolve(settings.defaults.model_dump(), levels[0], levels[1], levels[2], overrides)
    except PolicyError as exc:
        fail(str(exc))
    try:
        mail = extract(raw)
    except MimeTooComplex as exc:
        fail(f"the bridge would refuse this mail (554 5.6.0): {exc}")
    ctx = preview_context(raw, policy, to, mail)
    renderer = Renderer(DEFAULT_TEMPLATES, from_address="-", from_name="-", hostname="-")
    typer.echo(renderer.render_text("preview", ctx), nl=False)
