"""`[server] processes = 2`: SMTP on one port, one process dispatches, all stop.

By default (`first_process_smtp = "auto"`) the first process, which owns the binds,
accepts no SMTP and the other one accepts all; with "yes" both accept (the kernel
spreads the connections)."""

from __future__ import annotations

import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from bridge.sandbox.phone import read_inbox
from tests.e2e.processes import alive, wait_until
from tests.helpers import make_mail
from tests.peers.net import free_port
from tests.peers.postgres import throwaway_postgres

MAILSMS = str(Path(sys.executable).parent / "mailsms")
ACCEPTED = re.compile(r"\[(\d+)\] bridge\.intake: \S+: from=<[^>]*> to=(\+\d+) .*accepted")
LISTENING = re.compile(r"\[(\d+)\] bridge: SMTP intake listening on \S+ .*\(process \d of 2\)")
BINDS_ONLY = re.compile(r"\[(\d+)\] bridge: process 1 of 2: SMPP binds, dispatch and receipts;")


def _config(
    tmp: Path,
    database_url: str,
    port: int,
    event_loop: str = "asyncio",
    first_smtp: str = "yes",
    smtp: str = "",
) -> Path:
    path = tmp / "bridge.toml"
    path.write_text(
        f'database_url = "{database_url}"\ndemo = true\nlog_level = "INFO"\n'
        f'[server]\nprocesses = 2\nevent_loop = "{event_loop}"\n'
        f'first_process_smtp = "{first_smtp}"\n'
        f'[smtp]\nhost = "127.0.0.1"\nport = {port}\nmax_connections_per_ip_per_minute = 100000\n'
        f"{smtp}"
        f'[sandbox]\nenabled = true\nport = 0\ninbox = "{tmp / "inbox.jsonl"}"\n'
        f'[mailer]\nmode = "maildir"\nmaildir = "{tmp / "maildir"}"\n'
        "[dispatch]\npoll_interval = 30\n",  # an order sent at once was woken, not polled
        encoding="utf-8",
    )
    return path


@contextmanager
def _serving(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [MAILSMS, "serve", "-c", str(config)], stdout=out, stderr=subprocess.STDOUT
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


def _children(log: Path) -> set[int]:
    return {int(m[1]) for m in LISTENING.finditer(log.read_text(errors="replace"))}


@contextmanager
def _database(kind: str, tmp: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'bridge.db'}"
    else:
        with throwaway_postgres({}) as url:
            yield url


@pytest.mark.parametrize(
    ("database", "event_loop"),
    [
        pytest.param("postgresql", "asyncio", marks=pytest.mark.postgres),
        pytest.param("postgresql", "uvloop", marks=pytest.mark.postgres),
        ("sqlite", "asyncio"),
    ],
)
def test_two_processes_share_the_port_and_the_queue(
    tmp_path: Path, database: str, event_loop: str
) -> None:
    port = free_port()
    log = tmp_path / "serve.log"

    def config(url: str) -> Path:
        return _config(tmp_path, url, port, event_loop)

    with _database(database, tmp_path) as url, _serving(config(url), log) as p:
        wait_until(lambda: len(_children(log)) == 2, 30, "both processes listening")
        children = _children(log)
        assert log.read_text().count(f"event loop: {event_loop}") == 2, log.read_text()[-2000:]
        by_pid: dict[int, set[str]] = {}
        sent: list[str] = []
        for i in range(300):  # one connection per mail, until both processes took some
            number = f"+4917012{i:05d}"
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                smtp.sendmail(
                    "demo@example.com",
                    [f"{number}@eu.rsms.net"],
                    make_mail(to=f"{number}@eu.rsms.net", message_id=f"<m{i}@client.example>"),
                )
            sent.append(number)
            if i % 10 == 9:
                by_pid = {}
                for m in ACCEPTED.finditer(log.read_text(errors="replace")):
                    by_pid.setdefault(int(m[1]), set()).add(m[2])
                if len(by_pid) == 2:
                    break
        assert set(by_pid) == children, log.read_text()[-2000:]
        assert set().union(*by_pid.values()) == set(sent)
        inbox = tmp_path / "inbox.jsonl"
        # every order submitted once (dispatch is polled every 30 s: these were woken)
        wait_until(lambda: len(read_inbox(inbox)) >= len(sent), 20, "every SMS at the sandbox")
        assert sorted(sms.destination for sms in read_inbox(inbox)) == sorted(sent)
        engine = create_engine(url)

        def counts() -> tuple[int, int]:
            with engine.connect() as conn:
                orders = conn.execute(text('SELECT count(*) FROM "order"')).scalar()
                submits = conn.execute(
                    text("SELECT count(*) FROM order_event WHERE event = 'submitted'")
                ).scalar()
            return int(orders or 0), int(submits or 0)

        # an SMS reaches the sandbox before its submit is recorded: wait for the records
        wait_until(lambda: counts()[1] >= len(sent), 10, "every submit recorded")
        orders, submits = counts()
        engine.dispose()
        assert orders == len(sent)
        assert submits == len(sent)
        p.send_signal(signal.SIGTERM)
        assert p.wait(60) == 0, log.read_text()[-2000:]
        assert not [pid for pid in children if alive(pid)]
        assert "Traceback" not in log.read_text()


def _send_mails(port: int, first: int) -> None:
    """Mails `first` .. `first` + 19 over one connection."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        for i in range(first, first + 20):
            to = f"+4917013{i % 20:05d}@eu.rsms.net"  # under the pumping check's 25
            smtp.sendmail("demo@example.com", [to], make_mail(to=to, message_id=f"<s{i}@c>"))


@pytest.mark.parametrize(
    "database", [pytest.param("postgresql", marks=pytest.mark.postgres), "sqlite"]
)
def test_the_other_process_takes_a_share_of_the_status_mails_and_none_twice(
    tmp_path: Path, database: str
) -> None:
    """Receipts make status mails in the first process (the demo user wants one for every
    SMS); both processes' mailers are woken and claim them (a Maildir file's name carries
    the pid of the process that wrote it), and each is written once. Which mailer claims
    a notice is a race: mail goes out in rounds until both have written some."""
    port = free_port()
    log = tmp_path / "serve.log"
    maildir = tmp_path / "maildir" / "new"
    mails = 0

    def files() -> list[Path]:
        return list(maildir.iterdir()) if maildir.is_dir() else []

    def writers() -> set[int]:
        return {int(re.search(r"\.P(\d+)R", f.name)[1]) for f in files()}  # type: ignore[index]

    with _database(database, tmp_path) as url, _serving(_config(tmp_path, url, port), log) as p:
        wait_until(lambda: len(_children(log)) == 2, 30, "both processes listening")
        children = _children(log)
        for _ in range(12):  # rounds of 60 mails, until both processes wrote status mails
            # over three connections at once: the receipts, and so the status mails, come in
            # bursts, more often larger than one mailer's claim: the other one finds some too
            with ThreadPoolExecutor(3) as pool:
                list(pool.map(_send_mails, [port] * 3, range(mails, mails + 60, 20)))
            mails += 60
            wait_until(lambda n=mails: len(files()) >= n, 60, "a status mail for every SMS")  # type: ignore[misc]
            if writers() == children:
                break
        time.sleep(1.5)  # a notice written twice would show up by now (lease 300 s)
        engine = create_engine(url)
        with engine.connect() as conn:
            notices = conn.execute(
                text("SELECT status, count(*) FROM notice GROUP BY status")
            ).all()
            attempts = conn.execute(text("SELECT max(attempts) FROM notice")).scalar()
        engine.dispose()
        assert len(files()) == mails  # each once
        assert [tuple(r) for r in notices] == [("sent", mails)]
        assert attempts == 1  # never claimed twice
        assert writers() == children, (writers(), children, mails)  # both took a share
        p.send_signal(signal.SIGTERM)
        assert p.wait(60) == 0, log.read_text()[-2000:]
        assert "Traceback" not in log.read_text()


def _greeting(port: int) -> tuple[socket.socket, str]:
    """A connection to the SMTP port and its first reply line."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock, sock.makefile("rb").readline().decode("ascii", "replace").strip()


def test_the_connection_cap_per_address_holds_for_the_bridge_not_for_each_process(
    tmp_path: Path,
) -> None:
    """Each process counted a client's connections in its own memory: with two processes
    taking SMTP a client had twice `max_connections_per_ip` (the kernel spreads one
    client's connections over the processes). The count is shared now: four held open,
    any process refuses the fifth, and a closed one frees a place for either."""
    port = free_port()
    log = tmp_path / "serve.log"
    config = _config(
        tmp_path, f"sqlite:///{tmp_path / 'bridge.db'}", port, smtp="max_connections_per_ip = 4\n"
    )
    held: list[socket.socket] = []
    with _serving(config, log) as p:
        wait_until(lambda: len(_children(log)) == 2, 30, "both processes listening")
        try:
            for _ in range(4):
                sock, line = _greeting(port)
                held.append(sock)
                assert line.startswith("220 "), line
            # six more: on separate counts, all ten going to one process is a chance of 2/1024
            refused = []
            for _ in range(6):
                sock, line = _greeting(port)
                sock.close()
                refused.append(line)
            assert all(
                r.startswith("421 4.7.0 Too many connections from 127.0.0.1") for r in refused
            ), refused
            held.pop().close()

            def admitted() -> bool:
                sock, line = _greeting(port)
                if line.startswith("220 "):
                    held.append(sock)
                    return True
                sock.close()
                return False

            wait_until(admitted, 10, "a place freed by the closed connection")
        finally:
            for sock in held:
                sock.close()
        p.send_signal(signal.SIGTERM)
        assert p.wait(60) == 0, log.read_text()[-2000:]
        assert "Traceback" not in log.read_text()


def test_no_shared_memory_for_the_counts_is_one_sentence_before_anything_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A system without POSIX shared memory (a /dev without /dev/shm) cannot make the
    lock the processes' counts share: the start stops with what to do, before any
    process is forked and before the port is taken."""
    from bridge import processes
    from bridge.errors import ConfigError
    from bridge.settings import load_settings

    def refused(_: object) -> None:
        raise OSError(38, "Function not implemented")

    port = free_port()
    settings = load_settings(_config(tmp_path, f"sqlite:///{tmp_path / 'bridge.db'}", port))
    monkeypatch.setattr(processes, "shared_counts", refused)
    with pytest.raises(ConfigError, match=r"need POSIX shared memory \(/dev/shm\)"):
        processes.serve(settings)
    with socket.socket() as sock:  # the port was not taken
        sock.bind(("127.0.0.1", port))


@pytest.mark.postgres
def test_a_child_that_dies_stops_the_bridge_with_status_1(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "serve.log"
    with throwaway_postgres({}) as url, _serving(_config(tmp_path, url, port), log) as p:
        wait_until(lambda: len(_children(log)) == 2, 30, "both processes listening")
        victim, other = sorted(_children(log))
        os.kill(victim, signal.SIGKILL)
        assert p.wait(60) == 1
        text_ = log.read_text()
        assert f"process {victim} " in text_ and "stopping the others" in text_
        assert not alive(other)


def test_a_parent_killed_takes_its_children_with_it(tmp_path: Path) -> None:
    """The parent SIGKILLed (the OOM killer, an operator's kill -9) cannot stop its
    children; they were left accepting SMTP on the shared port and sending, unwatched,
    beside the bridge a service manager starts again. Each child now stops (gracefully)
    when its parent is gone."""
    log = tmp_path / "serve.log"
    config = _config(tmp_path, f"sqlite:///{tmp_path / 'bridge.db'}", free_port())
    with _serving(config, log) as p:
        wait_until(lambda: len(_children(log)) == 2, 30, "both processes listening")
        children = _children(log)
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
        try:
            wait_until(lambda: not any(_running(c) for c in children), 60, "the children gone")
        finally:
            for c in children:  # never leave them behind, whatever the code does
                if _running(c):
                    os.kill(c, signal.SIGKILL)


def _running(pid: int) -> bool:
    """There and not a zombie (an orphan's exit is reaped by whoever adopted it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_sigterm_to_every_process_as_systemd_sends_it_is_a_clean_stop(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    config = _config(tmp_path, f"sqlite:///{tmp_path / 'bridge.db'}", free_port())
    with _serving(config, log) as p:
        wait_until(lambda: len(_children(log)) == 2, 30, "both processes listening")
        for pid in (p.pid, *_children(log)):  # KillMode=control-group: all at once
            os.kill(pid, signal.SIGTERM)
        assert p.wait(60) == 0, log.read_text()[-2000:]
        assert "stopping the others" not in log.read_text()


def test_a_port_in_use_is_one_line_and_no_process_left(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = _config(tmp_path, f"sqlite:///{tmp_path / 'bridge.db'}", port)
        out = subprocess.run(
            [MAILSMS, "serve", "-c", str(config)], capture_output=True, text=True, timeout=60
        )
    assert out.returncode != 0
    assert "cannot start" in out.stderr and "Traceback" not in out.stderr


def _listening_inodes(port: int) -> set[str]:
    """The sockets listening on TCP `port` (state 0A in /proc/net/tcp), by inode."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
            found.add(fields[9])
    return found


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def test_by_default_the_binds_process_takes_no_smtp_and_mail_still_flows(tmp_path: Path) -> None:
    """The first process (binds, dispatch, receipts) holds no SMTP listener with
    processes = 2 and first_process_smtp = "auto": every mail is accepted by the other
    process, and the first one's dispatcher, woken over the socket pair, sends it."""
    port = free_port()
    log = tmp_path / "serve.log"
    url = f"sqlite:///{tmp_path / 'bridge.db'}"
    config = _config(tmp_path, url, port, first_smtp="auto")
    with _serving(config, log) as p:

        def binds() -> set[int]:
            return {int(m[1]) for m in BINDS_ONLY.finditer(log.read_text())}

        wait_until(lambda: len(_children(log)) == 1, 30, "the SMTP process listening")
        wait_until(lambda: len(binds()) == 1, 30, "the binds process started")
        (first,), (other,) = binds(), _children(log)
        listeners = _listening_inodes(port)
        assert listeners and listeners <= _socket_inodes(other)
        assert not listeners & _socket_inodes(first)
        sent = [f"+4917014{i:05d}" for i in range(20)]  # under the pumping check's 25
        for number in sent:  # one connection each: the kernel could pick any listener
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                to = f"{number}@eu.rsms.net"
                smtp.sendmail("demo@example.com", [to], make_mail(to=to))
        accepted = {int(m[1]) for m in ACCEPTED.finditer(log.read_text())}
        assert accepted == {other}
        inbox = tmp_path / "inbox.jsonl"
        wait_until(lambda: len(read_inbox(inbox)) >= len(sent), 20, "every SMS at the sandbox")
        assert sorted(sms.destination for sms in read_inbox(inbox)) == sorted(sent)
        p.send_signal(signal.SIGTERM)
        assert p.wait(60) == 0, log.read_text()[-2000:]
        assert not alive(first) and not alive(other)
        assert "Traceback" not in log.read_text()


def test_first_process_smtp_no_with_one_process_is_refused_with_a_sentence(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, f"sqlite:///{tmp_path / 'bridge.db'}", free_port())
    config.write_text(
        config.read_text().replace("processes = 2", "processes = 1").replace('"yes"', '"no"')
    )
    out = subprocess.run(
        [MAILSMS, "serve", "-c", str(config)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode != 0
    assert 'first_process_smtp = "no" needs processes >= 2' in out.stderr
    assert "Traceback" not in out.stderr


_GC_PROBE = """
import gc, os
_seen = set()
def _probe(phase, info):
    count = gc.get_freeze_count()
    if phase == "stop" and count not in _seen:
        _seen.add(count)
        with open(os.environ["GC_PROBE_OUT"], "a") as out:
            out.write(f"{os.getpid()} {count}\\n")
gc.callbacks.append(_probe)
"""


def test_each_process_keeps_what_its_start_loaded_out_of_the_collectors_full_passes(
    tmp_path: Path,
) -> None:
    """Once started, each bridge process freezes the objects its start made (`gc.freeze`):
    a full collection, which walked them all and held the event loop ~100 ms at a time in
    the middle of the traffic, then walks only what came after. Seen from inside each
    process by a probe on the collector (a `sitecustomize` on PYTHONPATH)."""
    probe = tmp_path / "probe"
    probe.mkdir()
    (probe / "sitecustomize.py").write_text(_GC_PROBE, encoding="utf-8")
    out = tmp_path / "gc.txt"
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(probe), "GC_PROBE_OUT": str(out)}
    config = _config(tmp_path, f"sqlite:///{tmp_path / 'bridge.db'}", port)
    with open(log, "wb") as logfile:
        proc = subprocess.Popen(
            [MAILSMS, "serve", "-c", str(config)], stdout=logfile, stderr=subprocess.STDOUT, env=env
        )
    try:
        wait_until(lambda: len(_children(log)) == 2, 30, "both processes listening")
        children = _children(log)

        def frozen() -> set[int]:
            for _ in range(5):  # some traffic, so that every process collects
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
                    smtp.noop()
            lines = out.read_text().split() if out.exists() else []
            pairs = zip(lines[::2], lines[1::2], strict=True)
            return {int(pid) for pid, count in pairs if int(count) > 0}

        wait_until(lambda: children <= frozen(), 30, "every process froze its start")
    finally:
        proc.terminate()
        assert proc.wait(60) == 0, log.read_text()[-2000:]
