"""`mailsms db upgrade`: create or migrate the database schema (with `serve`, the only
commands that do)."""

from __future__ import annotations

import typer

from bridge.cli.common import ConfigOpt, admin_engine, fail, read_settings
from bridge.db import engine as db
from bridge.errors import ConfigError

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade(config: ConfigOpt = None) -> None:
    """Create or migrate the database schema to the newest version (serve does this too).

    The other commands never migrate: on an older schema they ask for this command.
    """
    engine = admin_engine(read_settings(config), config, create=True)
    try:  # a server without its safe settings, an undeclared transaction pooler
        durability = db.check_durability(engine)
    except ConfigError as exc:
        fail(str(exc), 2)
    typer.echo(f"database at revision {db.current_revision(engine)}: {durability}")
