"""One sync run: lock, read the source, plan, check safety, apply in one transaction, report.

Exit codes: 0 success (also a dry run and a run without changes), 1 the source or the
database failed, 2 configuration error, 3 refused by a safety check, 4 another run
holds the lock. An aborted run changes no user row; its record is kept in `sync_run`.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from bridge.db.clock import utcnow
from bridge.errors import ConfigError
from bridge.tenants.directory_tables import SyncRun
from bridge.tenants.sync_status import SYNC_FAILURES, SyncRunStatus
from dirsync import report, store
from dirsync.config import DirsyncConfig
from dirsync.csv_source import CsvFormatError, read_csv
from dirsync.ldap_source import DirectoryError, read_directory, read_password
from dirsync.model import Plan, Problem, SourceUser
from dirsync.plan import PlanError, make_plan
from dirsync.safety import Refused, check_plan, check_source

log = logging.getLogger("dirsync")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_REFUSED, EXIT_LOCKED = 0, 1, 2, 3, 4
Progress = Callable[[str], None]


def holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def lock_is_stale(stale_after: timedelta, now: datetime) -> Callable[[str, datetime], bool]:
    """A lock is stale when its holder process on this host is gone, or it is too old."""

    def check(holder: str, acquired_at: datetime) -> bool:
        host, _, pid = holder.rpartition(":")
        if host == socket.gethostname() and pid.isdigit():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                return True
            except PermissionError:
                pass
        return acquired_at <= now - stale_after

    return check


def run_sync(
    cfg: DirsyncConfig,
    engine: Engine,
    *,
    csv: Path | None = None,
    dry_run: bool = False,
    allow_mass_changes: bool = False,
    progress: Progress | None = None,
    out: TextIO | None = None,
    now: datetime | None = None,
) -> report.Outcome:
    """Run once; never raises for expected failures (they come back as the outcome)."""
    # The run builds a few hundred thousand long-lived objects and no reference cycles
    # worth collecting: the cyclic GC would only rescan them again and again.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        return _run(cfg, engine, csv, dry_run, allow_mass_changes, progress, out, now)
    finally:
        if gc_was_enabled:
            gc.enable()


def _run(
    cfg: DirsyncConfig,
    engine: Engine,
    csv: Path | None,
    dry_run: bool,
    allow_mass_changes: bool,
    progress: Progress | None,
    out: TextIO | None,
    now: datetime | None,
) -> report.Outcome:
    started = utcnow() if now is None else now
    t0 = time.monotonic()
    source = "csv" if csv is not None else "ldap"
    outcome = report.Outcome(cfg.customer, source, SyncRunStatus.FAILED)
    holder = holder_id()
    locked = False
    try:
        if not store.schema_ready(engine):
            raise ConfigError("database_url: no dirsync tables; run `mailsms db upgrade` first")
        with Session(engine) as session:
            customer = store.load_customer(session, cfg.customer)
        if customer is None:
            raise ConfigError(f"customer: {cfg.customer!r} does not exist in the database")
        _check_profiles(cfg, set(customer.profiles))
        if not dry_run:
            stale = lock_is_stale(timedelta(minutes=cfg.lock_stale_minutes), started)
            busy = store.acquire_lock(engine, cfg.customer, holder, started, stale)
            if busy is not None:
                outcome.exit_code = EXIT_LOCKED
                outcome.message = f"another dirsync run for {cfg.customer} is running ({busy})"
                return outcome
            locked = True
        region = (
            cfg.default_country
            or customer.settings.get("default_country")
            or cfg.bridge_default_country
        )
        users, problems = _read(cfg, csv, region, started, progress)
        users, problems = _known_profiles(users, problems, set(customer.profiles))
        check_source(len(users), cfg.limits)
        if progress:
            progress(f"read {len(users)} users; planning")
        with Session(engine) as session, session.begin():
            if not dry_run:
                store.begin_run(session, cfg.customer)
            state = store.load_state(session, customer)
            plan = make_plan(
                users,
                state.stored,
                state.taken,
                now=started,
                retention_days=cfg.limits.retention_days,
                exclusions=cfg.exclusions,
                problems=problems,
            )
            outcome.plan = plan
            check_plan(plan, cfg.limits, allow_mass_changes=allow_mass_changes)
            if dry_run:
                outcome.status = SyncRunStatus.DRY_RUN
                if out is not None:
                    report.print_plan(plan, out)
                return outcome  # nothing was written; the empty transaction just ends
            if progress and not plan.empty:
                progress(f"applying {len(plan.changes)} changes")
            result = store.apply_plan(session, customer, plan, started)
            outcome.deleted, outcome.retired = result.deleted, result.retired
            outcome.status = SyncRunStatus.UNCHANGED if plan.empty else SyncRunStatus.APPLIED
            outcome.seconds = time.monotonic() - t0
            outcome.run_id = store.record_run(session, _record(outcome, started, dry_run))
    except Refused as exc:
        outcome.status, outcome.message, outcome.exit_code = (
            SyncRunStatus.REFUSED,
            str(exc),
            EXIT_REFUSED,
        )
        if exc.kind == "mass_change" and outcome.plan is not None and out is not None:
            report.print_plan(outcome.plan, out)
    except ConfigError as exc:
        outcome.message, outcome.exit_code = str(exc), EXIT_CONFIG
    except (DirectoryError, CsvFormatError, PlanError) as exc:
        outcome.message, outcome.exit_code = str(exc), EXIT_FAILED
    except SQLAlchemyError as exc:
        outcome.message = f"database error: {' '.join(str(exc).split())[:300]}"
        outcome.exit_code = EXIT_FAILED
    finally:
        outcome.seconds = time.monotonic() - t0
        if locked:
            try:
                store.release_lock(engine, cfg.customer, holder)
            except SQLAlchemyError as exc:  # the stale-lock rule frees it later
                log.warning("dirsync: could not release the lock: %s", exc)
    if outcome.status in SYNC_FAILURES and outcome.exit_code != EXIT_LOCKED:
        # if the database is what failed, the log line and the mail still report it
        with contextlib.suppress(SQLAlchemyError):
            outcome.run_id = store.record_run_alone(engine, _record(outcome, started, dry_run))
    return outcome


def _read(
    cfg: DirsyncConfig,
    csv: Path | None,
    region: str | None,
    now: datetime,
    progress: Progress | None,
) -> tuple[list[SourceUser], list[Problem]]:
    if csv is not None:
        return read_csv(csv, region=region)
    if cfg.ldap is None:
        raise ConfigError("ldap: no [ldap] table in the config (or pass --csv FILE)")
    result = read_directory(
        cfg.ldap,
        read_password(cfg.ldap),
        region=region,
        now=now,
        rules=cfg.profiles,
        default_profile=cfg.default_profile,
        progress=(lambda n: progress(f"read {n} entries")) if progress else None,
    )
    return result.users, result.problems


def _check_profiles(cfg: DirsyncConfig, known: set[str]) -> None:
    for i, rule in enumerate(cfg.profiles):
        if rule.profile not in known:
            raise ConfigError(
                f"profiles[{i}].profile: {rule.profile!r} is not a profile of {cfg.customer!r}"
            )
    if cfg.default_profile is not None and cfg.default_profile not in known:
        raise ConfigError(
            f"default_profile: {cfg.default_profile!r} is not a profile of {cfg.customer!r}"
        )


def _known_profiles(
    users: list[SourceUser], problems: list[Problem], known: set[str]
) -> tuple[list[SourceUser], list[Problem]]:
    """A profile name the customer does not have (CSV) is reported and left unchanged."""
    out: list[SourceUser] = []
    for u in users:
        if u.profile is not None and u.profile not in known:
            problems.append(Problem(u.ref, f"unknown profile {u.profile!r}; left unchanged"))
            u = replace(u, profile=None, keep=u.keep | {"profile"})
        out.append(u)
    return out, problems


def _record(o: report.Outcome, started: datetime, dry_run: bool) -> SyncRun:
    plan = o.plan or Plan()
    details = report.plan_lines(plan, limit=report.DETAIL_LIMIT) if o.plan is not None else []
    return SyncRun(
        customer=o.customer,
        source=o.source,
        status=o.status,
        dry_run=dry_run,
        started_at=started,
        finished_at=utcnow(),
        counts=o.all_counts(),
        message=o.message or report.summary_line(o),
        details=details[: report.DETAIL_LIMIT],
    )
