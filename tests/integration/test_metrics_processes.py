"""`/metrics` with `[server] processes = 2`: every process's counts, once, and no files left over.

`mailsms serve` runs as a real process (two children on one SMTP port, the HTTP listener
in the first) on 127.0.0.1; mails go in over SMTP until both children have accepted
some (each logs its own acceptances with its pid), then `/metrics` is read over HTTP.
The children count in files under a fresh directory in TMPDIR (a directory of the
test's own here), which the tests look into.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import smtplib
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from bridge.metrics import (
    CUSTOMER_NAMES,
    DIRECTORY_PREFIX,
    MetricFiles,
    count_in_files,
    files_directory,
    process_metrics,
)
from bridge.sandbox.phone import read_inbox
from tests.e2e.processes import alive, wait_until
from tests.helpers import make_mail
from tests.peers.net import free_port
from tests.peers.postgres import throwaway_postgres

MAILSMS = str(Path(sys.executable).parent / "mailsms")
ACCEPTED = re.compile(r"\[(\d+)\] bridge\.intake: \S+: from=<[^>]*> to=(\+\d+) .*accepted")
LISTENING = re.compile(r"\[(\d+)\] bridge: SMTP intake listening on \S+ .*\(process (\d) of 2\)")
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _config(tmp: Path, database_url: str, smtp: int, http: int) -> Path:
    path = tmp / "bridge.toml"
    path.write_text(
        f'database_url = "{database_url}"\ndemo = true\nlog_level = "INFO"\n'
        # Both processes take SMTP, so that both count mails and the sum is seen.
        '[server]\nprocesses = 2\nfirst_process_smtp = "yes"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {smtp}\nmax_connections_per_ip_per_minute = 100000\n'
        f'[http]\nenabled = true\nlisten = "127.0.0.1:{http}"\n'
        f'[sandbox]\nenabled = true\nport = 0\ninbox = "{tmp / "inbox.jsonl"}"\n'
        f'[mailer]\nmode = "maildir"\nmaildir = "{tmp / "maildir"}"\n',
        encoding="utf-8",
    )
    return path


@contextmanager
def _serving(config: Path, log: Path, tmpdir: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["TMPDIR"] = str(tmpdir)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [MAILSMS, "serve", "-c", str(config)], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:  # SIGTERM first: the parent stops its children (SIGKILL would not)
            proc.terminate()
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _children(log: Path, after: int = 0) -> dict[int, int]:
    """process number (1, 2) -> pid, from what was logged after byte `after`."""
    text = log.read_bytes()[after:].decode(errors="replace")
    return {int(m[2]): int(m[1]) for m in LISTENING.finditer(text)}


def _scrape(http: int) -> tuple[str, Samples]:
    text = httpx.get(f"http://127.0.0.1:{http}/metrics", timeout=10).text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    return text, samples


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _http_up(http: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{http}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _send_until_both_accepted(
    smtp: int, log: Path, pids: set[int], tag: str, after: int = 0
) -> list[str]:
    """One connection per mail, until each of `pids` has accepted some; the numbers sent."""
    sent: list[str] = []
    for i in range(300):
        number = f"+4917014{i:05d}"
        with smtplib.SMTP("127.0.0.1", smtp, timeout=10) as client:
            to = f"{number}@eu.rsms.net"
            client.sendmail("demo@example.com", [to], make_mail(to=to, message_id=f"<{tag}{i}@c>"))
        sent.append(number)
        if i % 5 == 4:
            text = log.read_bytes()[after:].decode(errors="replace")
            if {int(m[1]) for m in ACCEPTED.finditer(text)} == pids:
                return sent
    raise AssertionError(f"300 mails and not every process accepted one: {log.read_text()[-2000:]}")


def _metric_dirs(tmpdir: Path) -> list[Path]:
    return sorted(tmpdir.glob(f"{DIRECTORY_PREFIX}*"))


@contextmanager
def _database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'bridge.db'}"
    else:
        with throwaway_postgres({}) as url:
            yield url


@pytest.mark.parametrize(
    "database", [pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"]
)
def test_metrics_count_what_every_process_did(tmp_path: Path, database: str) -> None:
    smtp, http = free_port(), free_port()
    log, tmpdir = tmp_path / "serve.log", tmp_path / "tmp"
    tmpdir.mkdir()
    maildir = tmp_path / "maildir" / "new"
    with (
        _database(database, tmp_path) as url,
        _serving(_config(tmp_path, url, smtp, http), log, tmpdir) as p,
    ):
        wait_until(lambda: len(_children(log)) == 2, 30, "both processes listening")
        wait_until(lambda: _http_up(http), 30, "HTTP listening")
        pids = set(_children(log).values())
        sent = _send_until_both_accepted(smtp, log, pids, "m")
        n = len(sent)
        # Receipts make a status mail for every SMS (the demo user wants them); the
        # mailers of both processes claim them.
        wait_until(
            lambda: len(read_inbox(tmp_path / "inbox.jsonl")) >= n, 30, "every SMS at the sandbox"
        )

        def files() -> list[Path]:
            return list(maildir.iterdir()) if maildir.is_dir() else []

        wait_until(lambda: len(files()) >= n, 60, "a status mail for every SMS")
        wait_until(
            lambda: (
                _value(_scrape(http)[1], "mailsms_notices_total", kind="status", result="sent") >= n
            ),
            30,
            "the status mails counted",
        )
        text, found = _scrape(http)
        (directory,) = _metric_dirs(tmpdir)
        counted_by = {int(f.stem.rsplit("_", 1)[1]) for f in directory.glob("counter_*.db")}
        p.send_signal(signal.SIGTERM)
        assert p.wait(60) == 0, log.read_text()[-2000:]

    assert counted_by == pids  # each child counts in files of its own
    # Counted in the process that did it, summed at the scrape: every mail once.
    assert _value(found, "mailsms_mails_accepted_total") == n
    assert _value(found, "mailsms_orders_accepted_total") == n
    assert _value(found, "mailsms_customer_orders_accepted_total", customer="demo") == n
    assert _value(found, "mailsms_smtp_sessions_total", result="open") == n
    assert _value(found, "mailsms_notices_total", kind="status", result="sent") == n
    # Counted in the first process only (dispatch, receipts): not doubled by the files.
    assert _value(found, "mailsms_orders_submitted_total", smsc="sandbox") == n
    assert _value(found, "mailsms_receipts_total", smsc="sandbox", state="delivered") == n
    assert _value(found, "mailsms_order_submit_seconds_count") == n
    assert _value(found, "mailsms_order_submit_seconds_bucket", le="+Inf") == n
    assert _value(found, "mailsms_order_final_seconds_count") == n
    # Both processes' group commits: each mail, its submit's record and its receipt at
    # least (the mails committed by the second process, the rest by the first).
    commits = _value(found, "mailsms_database_commits_total")
    items = _value(found, "mailsms_database_committed_items_total")
    assert 2 <= commits <= items and items >= 3 * n, (commits, items)
    # Read at scrape time by the first process: as with one process.
    assert _value(found, "mailsms_scrape_ok") == 1
    assert _value(found, "mailsms_smpp_bind_up", smsc="sandbox", bind="sandbox") == 1
    assert _value(found, "mailsms_queue_depth", queue="orders", status="queued") == 0
    # Each series once, without the pid the files are kept by.
    series = Counter(line.split(" ")[0] for line in text.splitlines() if not line.startswith("#"))
    assert [s for s, times in series.items() if times > 1] == []
    assert not [key for key in found if "pid" in dict(key[1])]
    assert _metric_dirs(tmpdir) == []  # the run's directory went with it
    assert "Traceback" not in log.read_text()


def test_a_killed_child_leaves_no_files_and_a_new_run_counts_afresh(tmp_path: Path) -> None:
    """A child killed stops the bridge (status 1): its directory goes. The bridge killed
    whole (parent included) leaves its directory; the next start removes it. A new run
    never counts what an earlier one did."""
    smtp, http = free_port(), free_port()
    log, tmpdir = tmp_path / "serve.log", tmp_path / "tmp"
    tmpdir.mkdir()
    config = _config(tmp_path, f"sqlite:///{tmp_path / 'bridge.db'}", smtp, http)

    with _serving(config, log, tmpdir) as p:  # run 1: the second child is killed
        wait_until(lambda: len(_children(log)) == 2, 30, "both processes listening")
        wait_until(lambda: _http_up(http), 30, "HTTP listening")
        children = _children(log)
        first = _send_until_both_accepted(smtp, log, set(children.values()), "a")
        assert _value(_scrape(http)[1], "mailsms_mails_accepted_total") == len(first)
        assert len(_metric_dirs(tmpdir)) == 1
        os.kill(children[2], signal.SIGKILL)
        assert p.wait(60) == 1
    assert _metric_dirs(tmpdir) == []

    start = log.stat().st_size
    with _serving(config, log, tmpdir) as p:  # run 2: the whole bridge killed at once
        wait_until(lambda: len(_children(log, start)) == 2, 30, "both processes listening")
        wait_until(lambda: _http_up(http), 30, "HTTP listening")
        children = _children(log, start)
        assert _value(_scrape(http)[1], "mailsms_mails_accepted_total") == 0  # afresh
        second = _send_until_both_accepted(smtp, log, set(children.values()), "b", start)
        assert _value(_scrape(http)[1], "mailsms_mails_accepted_total") == len(second)
        (left,) = _metric_dirs(tmpdir)
        for pid in (p.pid, *children.values()):  # as an OOM kill or a power cut would
            os.kill(pid, signal.SIGKILL)
        p.wait(10)
        wait_until(lambda: not any(alive(c) for c in children.values()), 30, "every process gone")
    assert _metric_dirs(tmpdir) == [left]  # nobody was left to remove it

    start = log.stat().st_size
    with _serving(config, log, tmpdir) as p:  # run 3: starts without the last run's files
        wait_until(lambda: len(_children(log, start)) == 2, 30, "both processes listening")
        wait_until(lambda: _http_up(http), 30, "HTTP listening")
        (now,) = _metric_dirs(tmpdir)
        assert now != left
        children = _children(log, start)
        third = _send_until_both_accepted(smtp, log, set(children.values()), "c", start)
        found = _scrape(http)[1]
        assert _value(found, "mailsms_mails_accepted_total") == len(third)
        assert _value(found, "mailsms_customer_orders_accepted_total", customer="demo") == len(
            third
        )
        assert (now / CUSTOMER_NAMES).read_text(encoding="utf-8") == '"demo"\n'
        p.send_signal(signal.SIGTERM)
        assert p.wait(60) == 0, log.read_text()[-2000:]
    assert _metric_dirs(tmpdir) == []


def _count(directory: Path, mails: int, seconds: float, customer: str, expose: Path | None) -> None:
    """A forked process of the bridge's: counts in `directory`; `expose`: writes /metrics' text."""
    count_in_files(directory)
    registry, metrics = process_metrics(max_customers=1)
    for _ in range(mails):
        metrics.mails_accepted.inc()
    metrics.submit_seconds.observe(seconds)
    metrics.customer_orders.labels(metrics.customer(customer)).inc()
    if expose is not None:
        expose.write_bytes(generate_latest(registry))


def test_the_first_process_exposes_every_process_s_counters_and_histograms_once(
    tmp_path: Path,
) -> None:
    files = MetricFiles.fresh(tmp_path)
    exposed = tmp_path / "metrics.txt"
    fork = multiprocessing.get_context("fork")  # as bridge/processes.py starts its children
    for args in ((3, 0.07, "beta", None), (2, 40.0, "acme", exposed)):  # the second exposes
        child = fork.Process(target=_count, args=(files.directory, *args))
        child.start()
        child.join(30)
        assert child.exitcode == 0
    assert files_directory() is None  # this process still counts in memory
    text = exposed.read_text()
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert _value(found, "mailsms_mails_accepted_total") == 5  # 3 + 2: its own once
    assert _value(found, "mailsms_order_submit_seconds_count") == 2
    assert _value(found, "mailsms_order_submit_seconds_sum") == pytest.approx(40.07)
    assert _value(found, "mailsms_order_submit_seconds_bucket", le="0.1") == 1
    assert _value(found, "mailsms_order_submit_seconds_bucket", le="60.0") == 2
    assert _value(found, "mailsms_order_submit_seconds_bucket", le="+Inf") == 2
    # max_customers = 1 for the bridge: the first process to see one named it.
    assert _value(found, "mailsms_customer_orders_accepted_total", customer="beta") == 1
    assert _value(found, "mailsms_customer_orders_accepted_total", customer="other") == 1
    assert _value(found, "mailsms_customer_orders_accepted_total", customer="acme") == 0
    files.remove()
