"""`mailsms push-template set|show|preview|remove`: a customer's status and inbound push bodies."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from bridge.cli.common import ConfigOpt, administer, fail, read_file
from bridge.db.clock import utcnow
from bridge.files import UnreadableFile, parse_json
from bridge.push.template import PushTemplate, PushTemplateError, parse_template, preview
from bridge.push.templates_store import (
    customer_id_of,
    get_template,
    remove_template,
    set_template,
)

app = typer.Typer(
    help="Push templates: the fields, names, order and format (json, xml, kv) of a "
    "customer's status and inbound pushes (docs/push.md).",
    no_args_is_help=True,
)

CustomerOpt = Annotated[str, typer.Option(help="The customer the template belongs to.")]
FileOpt = Annotated[
    Path, typer.Option(help="The template: a .toml or .json file.", exists=True, dir_okay=False)
]


def read_template(path: Path) -> PushTemplate:
    """The checked template in a .toml or .json file; a one-line error otherwise."""
    text = read_file(path)
    data: Any
    try:
        if path.suffix == ".json":
            data = parse_json(text, str(path))
        elif path.suffix == ".toml":
            data = tomllib.loads(text)
        else:
            fail(f"{path}: write the template as a .toml or .json file")
    except UnreadableFile as exc:
        fail(str(exc))
    except tomllib.TOMLDecodeError as exc:
        fail(f"{path}: not valid TOML: {exc}")
    try:
        return parse_template(data)
    except PushTemplateError as exc:
        fail(f"{path}: " + "\n  ".join(("the template is not valid:", *exc.problems)))


def _show(template: PushTemplate) -> None:
    typer.echo(json.dumps(template.as_data(), indent=2, ensure_ascii=False))


def _preview(template: PushTemplate) -> None:
    for kind, shown in preview(template).items():
        if shown is None:
            typer.echo(f"{kind} push: today's body (the template has no [{kind}] fields)")
        else:
            typer.echo(f"{kind} push ({shown['content_type']}):\n{shown['body']}")


@app.command("set")
def template_set(customer: CustomerOpt, file: FileOpt, config: ConfigOpt = None) -> None:
    """Check the template and store it: pushes queued from now on use it."""
    template = read_template(file)

    def store(conn: Any) -> None:
        set_template(conn, customer_id_of(conn, customer), template, utcnow())

    administer(config, store)
    typer.echo(f"push template of {customer} set; pushes queued from now on use it")
    _preview(template)


@app.command("show")
def template_show(customer: CustomerOpt, config: ConfigOpt = None) -> None:
    """Print the customer's template (as JSON), or say it has none."""
    template = administer(config, lambda conn: get_template(conn, customer_id_of(conn, customer)))
    if template is None:
        typer.echo(f"{customer} has no push template: its pushes have today's bodies")
        return
    _show(template)


@app.command("preview")
def template_preview(
    customer: Annotated[
        str | None, typer.Option(help="Preview this customer's stored template.")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(help="Preview this file (nothing is stored).", exists=True, dir_okay=False),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Show the status and inbound bodies a template makes, with sample values."""
    if (customer is None) == (file is None):
        fail("give --file FILE (a template to try) or --customer NAME (the stored one)")
    if file is not None:
        _preview(read_template(file))
        return
    assert customer is not None
    template = administer(config, lambda conn: get_template(conn, customer_id_of(conn, customer)))
    if template is None:
        fail(f"{customer} has no push template; preview a file with --file")
    _preview(template)


@app.command("remove")
def template_remove(customer: CustomerOpt, config: ConfigOpt = None) -> None:
    """Remove the customer's template: its pushes get today's bodies again."""
    removed = administer(config, lambda conn: remove_template(conn, customer_id_of(conn, customer)))
    if not removed:
        fail(f"{customer} has no push template")
    typer.echo(f"push template of {customer} removed; its pushes get today's bodies")
