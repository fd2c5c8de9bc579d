"""The `mailsms` command: serve the bridge and administer it, assembled from one module per
command group.

Every command takes `-c/--config FILE` (or `MAILSMS_CONFIG=FILE`), the bridge's settings
file; without it the embedded default applies (SQLite in `var/`, the sandbox SMSC, notices
to `var/maildir/`). Shared helpers are in `bridge.cli.common`. `app` is complete when this
package is imported; help is plain text, so on/off flags read `--flag / --no-flag` and
`[section]` names in help texts stay.
"""

from __future__ import annotations

from typing import Annotated

import typer

from bridge import __version__
from bridge.cli import (
    api_keys,
    config,
    customers,
    database,
    dirsync,
    inbound,
    lists,
    logins,
    notices,
    orders,
    portal_accounts,
    preview,
    push_templates,
    report,
    sandbox,
    serve,
    settings,
    smpp_accounts,
    smsc,
    users,
)

app = typer.Typer(
    help=(
        "E-mail ⇄ SMS bridge: mail to <number>@<domain> becomes an SMS; "
        "receipts and replies come back by mail."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # a crash must not print passwords held in locals
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"mailsms {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Print the version and exit.", callback=_print_version, is_eager=True
        ),
    ] = False,
) -> None:
    pass


def version() -> None:
    """Print the version."""
    _print_version(True)


app.command("serve")(serve.serve)
app.command("version")(version)
app.add_typer(orders.orders_app, name="orders")
app.command("preview")(preview.preview)
app.add_typer(config.app, name="config")
app.add_typer(database.app, name="db")
app.add_typer(customers.app, name="customer")
app.add_typer(users.app, name="user")
app.add_typer(sandbox.app, name="sandbox")
app.add_typer(settings.app, name="settings")
app.add_typer(lists.app, name="list")
app.command("apply")(settings.apply)
app.add_typer(report.app, name="report")
app.add_typer(inbound.inbound_app, name="inbound")
app.add_typer(inbound.stop_app, name="stoplist")
app.add_typer(inbound.templates_app, name="templates")
app.add_typer(logins.app, name="login")
app.add_typer(smpp_accounts.app, name="smpp-account")
app.add_typer(api_keys.app, name="api-key")
app.add_typer(portal_accounts.app, name="portal-account")
app.add_typer(push_templates.app, name="push-template")
app.add_typer(orders.held_app, name="held")
app.command("notices")(notices.notices)
app.add_typer(dirsync.app, name="dirsync")
app.add_typer(smsc.app, name="smsc")


def _plain_help(group: typer.Typer) -> None:
    """Help as click writes it, for `group` and every group below it (Rich's tables show
    a flag as `<bool>` and read `[section]` in a help text as markup)."""
    group.rich_markup_mode = None
    for sub in group.registered_groups:
        if sub.typer_instance is not None:
            _plain_help(sub.typer_instance)


_plain_help(app)


def main() -> None:
    app()


__all__ = ["app", "main"]
