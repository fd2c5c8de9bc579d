"""A third-party SMPP gateway between the bridge and an SMSC: Jasmin (PyPI `jasmin`), which
we did not write, on a throwaway RabbitMQ and Redis.

Everything runs on 127.0.0.1 on free ports, out of a fresh temp dir, and is stopped at the
end (each process in a session of its own, ended by its process group):

* `epmd` on a port of its own (ERL_EPMD_PORT), started before RabbitMQ so that Erlang
  never spawns the machine-wide daemon on 4369 that would outlive the test;
* Debian's `rabbitmq-server` (the real script under /usr/lib/rabbitmq/bin, not the
  wrapper that switches to the `rabbitmq` user): its own node name, AMQP and
  distribution ports, mnesia/log dirs, config file, env file and no plugins; it runs as
  any user, root is not needed;
* Debian's `redis-server`, nothing saved to disk;
* `jasmind.py` (DLR lookup, DLR thrower and deliver_sm thrower in-process) from Jasmin's
  own virtualenv `jasmin/venv` (git-ignored; Jasmin pins its own Twisted): installed from
  `jasmin/requirements.txt` (jasmin 0.11.0 and every dependency pinned, all wheels but
  pure-Python sdists: no compiler) by `scripts/test-deps.sh`, or here on first use, with
  Debian's python3; reinstalled when that file changes. Its config (`jasmin.cfg`) puts
  the SMPP server, jCli, HTTP API and the PB services on free ports and the logs and
  the store in the temp dir (ROOT_PATH). The AMQP 0-9-1 spec jasmind loads is not in
  the installed package (only in Jasmin's tarball, for /etc/jasmin/resource), so
  txAMQP's own stripped copy of it is used.

Why 0.11.0, not 0.11.1 (the newest on PyPI): 0.11.1 never relays a receipt to an SMPP
user; every submit_sm_resp from the SMSC fails in Jasmin with "(<class 'AttributeError'>)
while handling submit_sm_resp pdu ...: 'SubmitSM' object has no attribute 'response'"
(jasmin/managers/listeners.py, jookies/jasmin#1236), so the message-id map the receipt
needs is never stored ("DLRMapNotFound"). The two releases have the same requirements.

jasmind takes a machine-wide lock (`lockfile.FileLock("/tmp/jasmind")`, never broken
when stale): a second jasmind on the machine, or one after a killed run, exits at once
with "Lock not acquired". The peer runs the unchanged jasmind.py script with that one
path moved into its temp dir.

Jasmin is configured through jCli (its telnet console): a group and user for our ESME,
an SMPP client connector `down` to the SMSC behind it (pointed at a test's SMSC and
started by `connect_downstream`), an MT default route to `down` and an MO default route
to our user (`smpps(<username>)`). If RabbitMQ, Redis or the venv cannot be had, the
tests FAIL, saying so (`make test` installs them); nothing is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.peers.net import free_port, listening
from tests.peers.node_smpp import NodeSmsc, running_node_smsc

JASMIN_DIR = Path(__file__).parent / "jasmin"
VENV = JASMIN_DIR / "venv"
REQUIREMENTS = JASMIN_DIR / "requirements.txt"  # jasmin==0.11.0 and every dependency, pinned
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's; Jasmin 0.11 wants >= 3.8
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
MISSING = (
    "{what} is not installed: run `make test` (scripts/test-deps.sh installs Debian's "
    "rabbitmq-server, redis-server and python3-venv, and Jasmin into tests/peers/jasmin/venv)"
)

JCLI_ADMIN = ("jcliadmin", "jclipwd")  # jasmin.cfg's defaults
USERNAME = "bridge"  # our ESME's system_id at Jasmin
PASSWORD = "pw"
CONNECTOR = "down"  # the SMPP client connector to the SMSC behind Jasmin

_JASMIN_CFG = """\
[smpp-server]
id = smpps_01
bind = 127.0.0.1
port = {smpp}
log_level = DEBUG
log_file = {logs}/smpp-server.log
[smpp-server-pb]
bind = 127.0.0.1
port = {smpp_pb}
log_file = {logs}/smpp-server-pb.log
[client-management]
store_path = {root}/store
bind = 127.0.0.1
port = {client_pb}
log_file = {logs}/smppclient-manager.log
[service-smppclient]
log_level = DEBUG
log_file = {logs}/service-smppclients.log
[sm-listener]
submit_retrial_delay_smppc_not_ready = 1
log_level = DEBUG
log_file = {logs}/messages.log
[dlr]
dlr_lookup_retry_delay = 1
dlr_lookup_max_retries = 5
log_level = DEBUG
log_file = {logs}/messages.log
[amqp-broker]
host = 127.0.0.1
port = {amqp}
vhost = /
username = guest
password = guest
spec = {spec}
log_file = {logs}/amqp-client.log
connection_loss_retry_delay = 1
connection_loss_failure_delay = 1
[http-api]
bind = 127.0.0.1
port = {http}
access_log = {logs}/http-access.log
log_file = {logs}/http-api.log
[router]
store_path = {root}/store
persistence_timer_secs = 3600
bind = 127.0.0.1
port = {router_pb}
log_file = {logs}/router.log
[deliversm-thrower]
log_level = DEBUG
log_file = {logs}/deliversm-thrower.log
[dlr-thrower]
dlr_pdu = {dlr_pdu}
log_level = DEBUG
log_file = {logs}/dlr-thrower.log
[redis-client]
host = 127.0.0.1
port = {redis}
dbid = 0
poolsize = 2
log_file = {logs}/redis-client.log
[jcli]
bind = 127.0.0.1
port = {jcli}
log_file = {logs}/jcli.log
"""

_RABBITMQ_CONF = """\
listeners.tcp.default = 127.0.0.1:{amqp}
disk_free_limit.absolute = 1MB
log.file.level = info
"""

# Run the unchanged jasmind.py, its machine-wide lock file moved into the temp dir.
_LAUNCHER = """\
import runpy, sys, lockfile
lock_path = sys.argv.pop(1)
_FileLock = lockfile.FileLock
lockfile.FileLock = lambda _path, *a, **k: _FileLock(lock_path, *a, **k)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


INSTALLED = VENV / "requirements.installed"  # the requirements.txt the venv was made from


def ensure_installed() -> None:
    """Jasmin's own virtualenv from the pinned requirements, unless it is there (the same
    steps as scripts/test-deps.sh)."""
    wanted = REQUIREMENTS.read_bytes()
    if INSTALLED.is_file() and INSTALLED.read_bytes() == wanted:
        return
    if not Path(SYSTEM_PYTHON).is_file():
        raise RuntimeError(MISSING.format(what="python3"))
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(VENV)], check=True, timeout=300)
    pip = [str(VENV / "bin" / "pip"), "install", "-q", "--no-input", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True, timeout=900)
    INSTALLED.write_bytes(wanted)


def _amqp_spec() -> Path:
    found = sorted(VENV.glob("lib/python3*/site-packages/txamqp/specs/standard/amqp0-9-1*.xml"))
    if not found:
        raise RuntimeError(f"txAMQP's AMQP 0-9-1 spec is missing from {VENV}")
    return found[0]


@dataclass(frozen=True)
class JasminStack:
    root: Path
    smpp_port: int  # Jasmin's SMPP server, where our ESME binds
    jcli_port: int
    http_port: int
    amqp_port: int
    redis_port: int

    def log(self, name: str = "") -> str:
        """One of Jasmin's logs (e.g. "messages", "smpp-server"), or all of them."""
        logs = self.root / "jasmin" / "var" / "log" / "jasmin"
        paths = [logs / f"{name}.log"] if name else sorted(logs.glob("*.log"))
        paths.append(self.root / "jasmind.out")
        return "".join(
            f"==> {p.name} <==\n{p.read_text(errors='replace')}\n" for p in paths if p.exists()
        )

    def jcli(self) -> Jcli:
        return Jcli(self.jcli_port)


class JcliError(AssertionError):
    pass


class Jcli:
    """A jCli session: telnet (negotiation ignored), echo and prompts stripped."""

    _PROMPTS = ("jcli : ", "> ", "Username: ", "Password: ")

    def __init__(self, port: int, timeout: float = 20.0) -> None:
        self._sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self._raw = b""
        self._text = ""
        self._read_prompt(0)  # "Authentication required." (no prompt yet)
        self.send(JCLI_ADMIN[0])
        reply = self.send(JCLI_ADMIN[1])
        if "Incorrect" in reply:
            raise JcliError(f"jCli login failed: {reply}")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.sendall(b"quit\r\n")
        self._sock.close()

    def __enter__(self) -> Jcli:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _clean(self) -> None:
        data = self._raw
        out = bytearray()
        i = 0
        while i < len(data):
            b = data[i]
            if b != 0xFF:
                out.append(b)
                i += 1
            elif i + 1 >= len(data):
                break  # IAC split across reads: wait for more
            elif data[i + 1] in (0xFB, 0xFC, 0xFD, 0xFE):  # WILL WONT DO DONT <option>
                if i + 2 >= len(data):
                    break
                i += 3
            elif data[i + 1] == 0xFA:  # SB ... IAC SE
                end = data.find(b"\xff\xf0", i)
                if end < 0:
                    break
                i = end + 2
            elif data[i + 1] == 0xFF:
                out.append(0xFF)
                i += 2
            else:
                i += 2
        self._raw = data[i:]
        text = out.decode("utf-8", errors="replace").replace("\r", "")
        self._text += re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)

    def _read_prompt(self, mark: int) -> str:
        """Read until, after the echoed line (a newline), one of the prompts ends the text."""
        while True:
            after = self._text[mark:]
            if mark == 0 and "Authentication required.\n\n" in after:
                return after
            if "\n" in after and after.endswith(self._PROMPTS):
                prompt = next(p for p in self._PROMPTS if after.endswith(p))
                return after[after.find("\n") + 1 : -len(prompt)].strip()
            chunk = self._sock.recv(65536)
            if not chunk:
                raise JcliError(f"jCli closed the connection: {after!r}")
            self._raw += chunk
            self._clean()

    def send(self, line: str) -> str:
        """Type one line; what jCli answered (without the echo and the next prompt)."""
        mark = len(self._text)
        self._sock.sendall(line.encode() + b"\r\n")
        return self._read_prompt(mark)

    def run(self, *lines: str, expect: str = "Successfully") -> str:
        """Type the lines (a command and its `key value` lines and `ok`); the last answer,
        which must contain `expect`."""
        reply = ""
        for line in lines:
            reply = self.send(line)
        if expect not in reply:
            raise JcliError(f"jCli {lines!r}: {reply!r}")
        return reply


def _wait_port(
    port: int, what: str, proc: subprocess.Popen[bytes], log: Path, within: float
) -> None:
    deadline = time.monotonic() + within
    while not listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"
            state = f"exited {proc.returncode}" if proc.returncode is not None else "timed out"
            raise RuntimeError(f"{what} did not listen on {port} ({state}):\n{tail}")
        time.sleep(0.1)


def _spawn(
    argv: Sequence[str], out: Path, env: dict[str, str], cwd: Path
) -> subprocess.Popen[bytes]:
    with out.open("ab") as log:
        return subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with everything it forked
        )


def _stop(proc: subprocess.Popen[bytes], within: float = 20.0) -> None:
    """SIGTERM to the process group we started, SIGKILL if it is still up after `within`."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(within)
    deadline = time.monotonic() + within
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _base_env(root: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(root),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": str(root / "tmp"),
    }


def _require() -> None:
    for what, path in (
        ("rabbitmq-server", RABBITMQ_SERVER),
        ("redis-server", shutil.which("redis-server") or "/usr/bin/redis-server"),
        ("epmd", shutil.which("epmd") or "/usr/bin/epmd"),
    ):
        if not Path(path).exists():
            raise RuntimeError(MISSING.format(what=what))
    ensure_installed()


@contextlib.contextmanager
def throwaway_jasmin(dlr_pdu: str = "deliver_sm") -> Iterator[JasminStack]:
    """RabbitMQ, Redis and jasmind, configured with our user, the `down` connector (not
    started: see `connect_downstream`) and the MT/MO default routes. `dlr_pdu`: how
    Jasmin sends receipts to SMPP users, "deliver_sm" (its default) or "data_sm"."""
    _require()
    root = Path(tempfile.mkdtemp(prefix="mailsms-jasmin-"))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        ports = {
            k: free_port()
            for k in (
                "smpp",
                "smpp_pb",
                "client_pb",
                "router_pb",
                "http",
                "jcli",
                "amqp",
                "dist",
                "epmd",
                "redis",
            )
        }
        for sub in ("tmp", "rabbitmq/mnesia", "rabbitmq/log", "redis", "jasmin/store"):
            (root / sub).mkdir(parents=True)
        env = _base_env(root)

        # epmd first, on its own port: otherwise Erlang starts a daemon that outlives us
        epmd_env = {**env, "ERL_EPMD_PORT": str(ports["epmd"])}
        epmd_log = root / "epmd.log"
        epmd = _spawn(
            [shutil.which("epmd") or "epmd", "-port", str(ports["epmd"])], epmd_log, epmd_env, root
        )
        procs.append(epmd)
        _wait_port(ports["epmd"], "epmd", epmd, epmd_log, 20)

        rabbit = root / "rabbitmq"
        (rabbit / "rabbitmq.conf").write_text(_RABBITMQ_CONF.format(**ports), encoding="utf-8")
        (rabbit / "rabbitmq-env.conf").write_text("", encoding="utf-8")
        (rabbit / "enabled_plugins").write_text("[].\n", encoding="utf-8")
        rabbit_env = {
            **epmd_env,
            "RABBITMQ_NODENAME": f"mailsms{ports['amqp']}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(ports["amqp"]),
            "RABBITMQ_DIST_PORT": str(ports["dist"]),
            "RABBITMQ_MNESIA_BASE": str(rabbit / "mnesia"),
            "RABBITMQ_LOG_BASE": str(rabbit / "log"),
            "RABBITMQ_CONFIG_FILE": str(rabbit / "rabbitmq.conf"),
            "RABBITMQ_CONF_ENV_FILE": str(rabbit / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(rabbit / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(rabbit / "plugins-expand"),
            "RABBITMQ_PID_FILE": str(rabbit / "rabbitmq.pid"),
            # at most two schedulers, whatever the machine: a small broker among other tests
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "+S 2:2 +A 4",
        }
        rabbit_log = rabbit / "server.out"
        rmq = _spawn([RABBITMQ_SERVER], rabbit_log, rabbit_env, root)
        procs.append(rmq)

        redis_log = root / "redis" / "redis.log"
        redis = _spawn(
            [
                shutil.which("redis-server") or "/usr/bin/redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(ports["redis"]),
                "--dir",
                str(root / "redis"),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--logfile",
                str(redis_log),
            ],
            root / "redis" / "server.out",
            env,
            root,
        )
        procs.append(redis)
        _wait_port(ports["redis"], "redis-server", redis, redis_log, 20)
        _wait_port(ports["amqp"], "rabbitmq-server", rmq, rabbit_log, 90)

        jroot = root / "jasmin"
        cfg = jroot / "jasmin.cfg"
        cfg.write_text(
            _JASMIN_CFG.format(
                root=jroot,
                logs=jroot / "var" / "log" / "jasmin",
                spec=_amqp_spec(),
                dlr_pdu=dlr_pdu,
                **ports,
            ),
            encoding="utf-8",
        )
        jasmin_env = {
            **env,
            "ROOT_PATH": str(jroot),
            "LOG_PATH": str(jroot / "var" / "log" / "jasmin"),
        }
        jasmind_out = root / "jasmind.out"
        jasmind = _spawn(
            [
                str(VENV / "bin" / "python"),
                "-c",
                _LAUNCHER,
                str(root / "jasmind"),
                str(VENV / "bin" / "jasmind.py"),
                "--config",
                str(cfg),
                "--enable-dlr-lookup",
                "--enable-dlr-thrower",  # (0.11.0 runs the deliver_sm thrower in-process)
            ],
            jasmind_out,
            jasmin_env,
            root,
        )
        procs.append(jasmind)
        _wait_port(ports["jcli"], "jasmind (jCli)", jasmind, jasmind_out, 60)
        stack = JasminStack(
            root, ports["smpp"], ports["jcli"], ports["http"], ports["amqp"], ports["redis"]
        )
        _configure(stack)
        _wait_bindable(stack.smpp_port, jasmind, jasmind_out, 90)
        yield stack
    finally:
        for proc in reversed(procs):
            _stop(proc)
        shutil.rmtree(root, ignore_errors=True)


def _wait_bindable(port: int, proc: subprocess.Popen[bytes], log: Path, within: float) -> None:
    """Until Jasmin answers a bind of our user: its SMPP port listens before it can
    (under load, a first bind went unanswered for the ESME's whole response timeout)."""
    body = f"{USERNAME}\0{PASSWORD}\0\0".encode() + bytes((0x34, 0, 0)) + b"\0"
    bind = struct.pack(">IIII", 16 + len(body), 0x09, 0, 1) + body
    deadline = time.monotonic() + within
    last = "not tried"
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(bind)
                head = b""
                while len(head) < 16:
                    chunk = sock.recv(16 - len(head))
                    if not chunk:
                        raise ConnectionError("closed")
                    head += chunk
                _, command_id, status, _ = struct.unpack(">IIII", head)
                if command_id == 0x80000009 and status == 0:
                    return
                last = f"bind_resp 0x{command_id:08X} status 0x{status:02X}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-4000:] if log.exists() else "(no log)"
    raise RuntimeError(f"Jasmin did not answer a bind on {port} ({last}):\n{tail}")


def _configure(stack: JasminStack) -> None:
    with stack.jcli() as jcli:
        jcli.run("group -a", "gid bridges", "ok")
        jcli.run(
            "user -a",
            f"username {USERNAME}",
            f"password {PASSWORD}",
            "gid bridges",
            f"uid {USERNAME}",
            "ok",
        )
        # the downstream SMSC's port is set per test (connect_downstream)
        jcli.run(
            "smppccm -a",
            f"cid {CONNECTOR}",
            "host 127.0.0.1",
            f"port {free_port()}",
            "username jasmin",
            "password pw",
            "submit_throughput 0",
            "con_fail_delay 1",
            "con_loss_delay 1",
            "ok",
        )
        jcli.run(
            "mtrouter -a", "type DefaultRoute", f"connector smppc({CONNECTOR})", "rate 0.00", "ok"
        )
        jcli.run("morouter -a", "type DefaultRoute", f"connector smpps({USERNAME})", "ok")


def connect_downstream(stack: JasminStack, port: int) -> None:
    """Point the `down` connector at the SMSC on `port` and start it (it binds soon after)."""
    with stack.jcli() as jcli:
        jcli.run("smppccm -u " + CONNECTOR, f"port {port}", "ok")
        jcli.run(f"smppccm -1 {CONNECTOR}")


def disconnect_downstream(stack: JasminStack) -> None:
    with stack.jcli() as jcli:
        jcli.run(f"smppccm -0 {CONNECTOR}")


@contextlib.asynccontextmanager
async def node_behind(stack: JasminStack) -> AsyncIterator[NodeSmsc]:
    """A fresh node-smpp SMSC with Jasmin's `down` connector bound to it; the connector
    is stopped again at the end."""
    async with running_node_smsc() as node:
        await asyncio.to_thread(connect_downstream, stack, node.port)
        try:
            await node.wait_until(lambda: node.binds >= 1, within=30)
            yield node
        finally:
            await asyncio.to_thread(disconnect_downstream, stack)


def connector_list(stack: JasminStack) -> str:
    with stack.jcli() as jcli:
        return jcli.send("smppccm --list")


# Jasmin as a customer's gateway in front of the bridge's SMPP server (the other way round
# from the above): an SMPP client connector bound to the bridge, an HTTP user whose
# messages are routed to it, and an MO route from it to an HTTP connector.


def add_http_user(stack: JasminStack, username: str, password: str, gid: str) -> None:
    """A group `gid` and a user in it (Jasmin's defaults: HTTP send allowed, no quotas)."""
    with stack.jcli() as jcli:
        jcli.run("group -a", f"gid {gid}", "ok")
        jcli.run(
            "user -a",
            f"username {username}",
            f"password {password}",
            f"gid {gid}",
            f"uid {username}",
            "ok",
        )


def add_smpp_client(
    stack: JasminStack,
    cid: str,
    port: int,
    system_id: str,
    password: str,
    host: str = "127.0.0.1",
    **options: str | int,
) -> None:
    """An SMPP client connector `cid` bound to `host:port` as `system_id`, logging into
    Jasmin's log dir (`stack.log(cid)`), started at once. `options`: more jCli keys
    (`elink_interval`, `con_loss_delay`, `src_ton`, ...); Jasmin's defaults otherwise."""
    logs = stack.root / "jasmin" / "var" / "log" / "jasmin"
    keys: dict[str, str | int] = {"logfile": str(logs / f"{cid}.log"), "loglevel": 10}
    keys.update(options)
    with stack.jcli() as jcli:
        jcli.run(
            "smppccm -a",
            f"cid {cid}",
            f"host {host}",
            f"port {port}",
            f"username {system_id}",
            f"password {password}",
            *(f"{k} {v}" for k, v in keys.items()),
            "ok",
        )
        jcli.run(f"smppccm -1 {cid}")


def route_mt_of_user(stack: JasminStack, uid: str, cid: str, order: int = 10) -> None:
    """Send what user `uid` submits (HTTP or SMPP) to the SMPP client connector `cid`."""
    with stack.jcli() as jcli:
        jcli.run("filter -a", f"fid user_{uid}", "type UserFilter", f"uid {uid}", "ok")
        jcli.run(
            "mtrouter -a",
            "type StaticMTRoute",
            f"order {order}",
            f"filters user_{uid}",
            f"connector smppc({cid})",
            "rate 0.00",
            "ok",
        )


def route_mo_to_http(stack: JasminStack, cid: str, url: str, order: int = 10) -> None:
    """Throw what the SMPP client connector `cid` receives (deliver_sm, not receipts) to
    `url` by an HTTP connector (POST; the receiver must answer `ACK/Jasmin`)."""
    with stack.jcli() as jcli:
        jcli.run("filter -a", f"fid from_{cid}", "type ConnectorFilter", f"cid {cid}", "ok")
        jcli.run("httpccm -a", f"cid http_{cid}", f"url {url}", "method POST", "ok")
        jcli.run(
            "morouter -a",
            "type StaticMORoute",
            f"order {order}",
            f"filters from_{cid}",
            f"connector http(http_{cid})",
            "ok",
        )


def connector_status(stack: JasminStack, cid: str) -> str:
    """The session state `smppccm --list` shows for `cid` (BOUND_TRX, NONE, ...)."""
    for line in connector_list(stack).splitlines():
        fields = line.lstrip("#").split()
        if fields and fields[0] == cid:
            return fields[2]
    raise JcliError(f"no connector {cid!r} in {connector_list(stack)!r}")
