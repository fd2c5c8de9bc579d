"""`mailsms dirsync`: options, logging, progress on a terminal, exit status; `mailsms dirsync
runs` lists the record of past runs.

Options:

  --config, -c FILE        the bridge's settings file (or MAILSMS_CONFIG), whose [dirsync]
                           table holds customer, [dirsync.ldap], [[dirsync.profiles]],
                           [dirsync.safety], [dirsync.exclude], [dirsync.report]; see
                           examples/dirsync/bridge-dirsync.toml. A separate dirsync
                           settings file is still read, with a deprecation warning.
  --csv FILE               import this CSV file (fixed format, see docs/dirsync.md) instead
                           of reading the directory; same planning and safety checks.
  --dry-run                print the plan (adds, updates with before → after, disables,
                           deletes, problems) and change nothing.
  --allow-mass-changes     accept more disables (or users losing their aliases, mobile,
                           sender ID, cost centre or profile) than [safety]
                           max_disable_count / max_disable_percent allow, for this run only.
  --database-url URL       the bridge database (default: the settings' database_url).
  --verbose, -v            log every step and the summary line to stderr.

Exit status: 0 ok, 1 source or database failure (also a database whose schema is not the
newest), 2 configuration error, 3 refused by a safety check, 4 another run holds the lock.
On failure one line goes to stderr.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError

from bridge.cli.common import (
    CONFIG_ENV,
    POINT_AT_IT,
    ConfigOpt,
    missing_database,
    open_database,
    origin,
    outdated_schema,
)
from bridge.db.engine import open_engine
from bridge.db.store import run_sync as run_in
from bridge.errors import ConfigError
from bridge.notices.headers import HeaderError
from bridge.notices.smtp_client import DeliveryError
from bridge.settings import load_settings
from bridge.tenants.sync_runs import list_runs
from dirsync import report
from dirsync.config import (
    MOVE_INTO_BRIDGE_SETTINGS,
    DirsyncConfig,
    from_settings,
    load_config,
    separate_file,
)
from dirsync.run import EXIT_CONFIG, EXIT_FAILED, run_sync

log = logging.getLogger("dirsync")

SUMMARY = "Sync users from LDAP / Active Directory (or a CSV file); cron-safe."
HELP = {
    "config": "The bridge's settings file (TOML) with a [dirsync] table, see "
    "examples/dirsync/bridge-dirsync.toml (a separate dirsync settings file is still read, "
    "deprecated).",
    "csv": "Import this CSV file (fixed format, see docs/dirsync.md) instead of the directory.",
    "dry_run": "Print the planned changes (with before → after) and change nothing.",
    "allow_mass_changes": "Accept more disables, or users losing a synced value, than the "
    "[safety] caps allow, for this run only.",
    "database_url": "Bridge database URL (default: database_url of the settings).",
    "verbose": "Log every step and the summary line to stderr.",
}


def dirsync_command(
    config: Path | None,
    csv: Path | None,
    dry_run: bool,
    allow_mass_changes: bool,
    database_url: str | None,
    verbose: bool,
) -> int:
    """Run one sync; returns the exit status (see the module docstring)."""
    tty = sys.stderr.isatty()
    _setup_logging(verbose)
    try:
        cfg, where, how = _load(config, csv, database_url)
    except ConfigError as exc:
        print(f"dirsync: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    progress = (
        (lambda text: print(f"\rdirsync: {text}\033[K", end="", file=sys.stderr)) if tty else None
    )
    missing = missing_database(cfg.database_url, where, how)
    if missing is not None:
        print(f"dirsync: {missing}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        engine = open_engine(cfg.database_url)
    except ConfigError as exc:
        print(f"dirsync: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        outdated = outdated_schema(engine)
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        outdated = f"cannot open the database ({reason}); check database_url"
    if outdated is not None:
        engine.dispose()
        print(f"dirsync: {outdated}", file=sys.stderr)
        return EXIT_FAILED
    try:
        outcome = run_sync(
            cfg, engine, csv=csv, dry_run=dry_run, allow_mass_changes=allow_mass_changes,
            progress=progress, out=sys.stdout if (dry_run or tty or verbose) else None,
        )  # fmt: skip
    finally:
        engine.dispose()
    if progress:
        print("\r\033[K", end="", file=sys.stderr)
    line = report.summary_line(outcome)
    if outcome.exit_code:
        log.warning("%s", line)
    else:
        log.info("%s", line)
    if tty and not verbose and not outcome.exit_code:
        print(line, file=sys.stderr)
    if cfg.report.log_file is not None:
        try:
            report.append_log(cfg.report.log_file, f"{outcome.status} {line}")
        except OSError as exc:
            log.warning("dirsync: cannot write %s: %s", cfg.report.log_file, exc)
    if report.should_mail(cfg.report, outcome):
        try:
            asyncio.run(report.send_mail(cfg.report, outcome))
        except (DeliveryError, HeaderError) as exc:  # a report that fails must not crash
            log.warning("dirsync: report mail not sent: %s", exc)
    if outcome.exit_code:
        print(f"dirsync: {outcome.status}: {outcome.message}", file=sys.stderr)
    return outcome.exit_code


def _load(
    config: Path | None, csv: Path | None, database_url: str | None
) -> tuple[DirsyncConfig, str, str]:
    """dirsync's settings, where its database_url comes from, and how to point at another."""
    if config is not None and separate_file(config):
        print(f"dirsync: warning: {config}: {MOVE_INTO_BRIDGE_SETTINGS}", file=sys.stderr)
        cfg = load_config(config, database_url=database_url)
        where = f"dirsync settings {config}"
        how = (
            "set database_url in the dirsync settings (or --database-url) to the bridge's "
            "database; `mailsms db upgrade` creates a new one"
        )
        table = "[ldap]"
    else:
        settings = load_settings(config)
        cfg = from_settings(
            settings, str(config or "the embedded default settings"), database_url=database_url
        )
        where = "--database-url" if database_url else origin(config)
        how, table = POINT_AT_IT, "[dirsync.ldap]"
    if csv is None and cfg.ldap is None:
        raise ConfigError(f"no {table} table in {config}; add one or pass --csv FILE")
    return cfg, where, how


def _setup_logging(verbose: bool) -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    log.setLevel(logging.INFO if verbose else logging.WARNING)


app = typer.Typer(invoke_without_command=True)


@app.callback(help=SUMMARY)
def dirsync(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help=HELP["config"],
            envvar=CONFIG_ENV,
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    csv: Annotated[Path | None, typer.Option("--csv", help=HELP["csv"])] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help=HELP["dry_run"])] = False,
    allow_mass_changes: Annotated[
        bool, typer.Option("--allow-mass-changes", help=HELP["allow_mass_changes"])
    ] = False,
    database_url: Annotated[
        str | None, typer.Option("--database-url", help=HELP["database_url"])
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help=HELP["verbose"])] = False,
) -> None:
    """Sync users from LDAP / Active Directory (or a CSV file); `dirsync runs` lists past runs."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = config  # `dirsync -c FILE runs` as well as `dirsync runs -c FILE`
        return
    code = dirsync_command(config, csv, dry_run, allow_mass_changes, database_url, verbose)
    if code:
        raise typer.Exit(code)


@app.command("runs")
def dirsync_runs(
    ctx: typer.Context,
    customer: Annotated[str | None, typer.Option(help="Only this customer's runs.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 20,
    details: Annotated[
        bool, typer.Option("--details", help="Also each run's details (refusals, problems).")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """List past sync runs, newest first: when, source, result, counts and summary."""
    engine = open_database(config if config is not None else ctx.obj)
    runs = run_in(engine, list_runs, customer=customer, limit=limit)
    if not runs:
        typer.echo("no dirsync runs recorded")
    for r in runs:
        counts = " ".join(f"{k}={v}" for k, v in sorted(r.counts.items()))
        took = (r.finished_at - r.started_at).total_seconds()
        typer.echo(
            f"{r.id:<5} {r.started_at:%Y-%m-%d %H:%M:%S} {r.customer:<12} {r.source:<4} "
            f"{r.status:<9}{' (dry run)' if r.dry_run else ''} {took:.1f} s {counts}"
            + (f"  {r.message}" if r.message else "")
        )
        if details:
            for line in r.details:
                typer.echo(f"      {line}")
