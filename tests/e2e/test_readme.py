"""The README's first steps, run as written: `make run`, then its swaks, mailsms, ls and
Python commands in a second "terminal", with the real swaks.

The only change to a command is the port: the bridge listens on free ports (port 0 in
its settings) instead of 2525 and 8025, so the test runs beside anything else on the machine.
The bridge is started with `make run CONFIG=…`; the commands run in a directory whose
`.venv` is this venv, with MAILSMS_CONFIG naming the same settings (and the sandbox's
real port), and their output is checked against what the README's comments promise.
"""

from __future__ import annotations

import email
import email.policy
import functools
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bridge.sandbox.smsc import read_inbox
from tests.e2e.processes import clean_env, served, wait_until

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
PHONE = "+491701234567"


def _blocks() -> list[list[str]]:
    """Every ```sh block of the README as its commands (continuation lines joined)."""
    blocks = []
    for body in re.findall(r"```sh\n(.*?)```", README, flags=re.S):
        commands = re.sub(r"\\\n", " ", body).splitlines()
        blocks.append([c for c in commands if c.strip()])
    return blocks


def _block(marker: str) -> list[str]:
    (block,) = [b for b in _blocks() if any(marker in c for c in b)]
    return block


class Terminal:
    """The second terminal: runs README commands in `cwd` and reads what they leave there."""

    def __init__(self, cwd: Path, env: dict[str, str], smtp_port: int, http_port: int) -> None:
        self.cwd, self.env, self.smtp_port, self.http_port = cwd, env, smtp_port, http_port

    def run(self, command: str) -> str:
        command = command.replace("127.0.0.1:2525", f"127.0.0.1:{self.smtp_port}")
        command = command.replace("127.0.0.1:8025", f"127.0.0.1:{self.http_port}")
        command = command.replace('SMTP("127.0.0.1", 2525)', f'SMTP("127.0.0.1", {self.smtp_port})')
        assert "2525" not in command and "8025" not in command, f"a port spelling: {command}"
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"
        return done.stdout

    def sms(self) -> list[str]:
        return [m.text for m in read_inbox(self.cwd / "var" / "sandbox" / "inbox.jsonl", PHONE)]

    def mails(self) -> list[email.message.Message]:
        new = self.cwd / "var" / "maildir" / "new"
        files = sorted(new.iterdir()) if new.is_dir() else []
        return [
            email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files
        ]

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for m in self.mails()]

    def texts(self) -> list[str]:
        """The text/plain body of every mail in the Maildir."""
        out = []
        for mail in self.mails():
            for part in mail.walk():
                payload = part.get_payload(decode=True)
                if part.get_content_type() == "text/plain" and isinstance(payload, bytes):
                    out.append(payload.decode(part.get_content_charset() or "utf-8"))
        return out


Step = tuple[str, Callable[[Terminal], object] | None, Callable[[str], bool]]


def _walk(term: Terminal, commands: list[str], steps: list[Step]) -> None:
    assert len(commands) == len(steps), commands
    for command, (start, ready, output_ok) in zip(commands, steps, strict=True):
        assert command.startswith(start), (command, start)
        if ready is not None:
            wait_until(functools.partial(ready, term), what=f"before `{command}`")
        out = term.run(command)
        assert output_ok(out), f"{command}\n{out}"


def test_readme_first_steps_work_as_written(tmp_path: Path) -> None:
    assert shutil.which("swaks"), "swaks is missing: scripts/test-deps.sh installs it"
    var = tmp_path / "var"
    settings = f"""demo = true
database_url = "sqlite:///{var / "bridge.db"}"
[smtp]
port = 0
[sandbox]
enabled = true
port = {{port}}
inbox = "{var / "sandbox" / "inbox.jsonl"}"
rules_file = "{var / "sandbox" / "rules.json"}"
[mailer]
maildir = "{var / "maildir"}"
[http]
enabled = true
listen = "127.0.0.1:0"
"""
    (tmp_path / "serve.toml").write_text(settings.format(port=0), encoding="utf-8")
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    make = ["make", "-s", "-C", str(ROOT), "run", f"VENV={sys.prefix}"]
    make.append(f"CONFIG={tmp_path / 'serve.toml'}")
    with served(make, tmp_path, clean_env()) as bridge:
        cli = tmp_path / "cli.toml"
        cli.write_text(settings.format(port=bridge.sandbox_port), encoding="utf-8")
        http = wait_until(
            lambda: re.search(r"HTTP listening on http://127\.0\.0\.1:(\d+)", bridge.log()),
            what="the HTTP listener",
        )
        term = Terminal(
            tmp_path, clean_env(MAILSMS_CONFIG=str(cli)), bridge.smtp_port, int(http[1])
        )

        first_steps: list[Step] = [
            ("swaks ", None, lambda out: "250 2.0.0 Ok: queued as" in out),
            (".venv/bin/mailsms sandbox inbox", lambda t: t.sms(),
             lambda out: f"to {PHONE}" in out and "Hello from the bridge" in out),
            ("ls var/maildir/new/", lambda t: any("SMS delivered" in s for s in t.subjects()),
             lambda out: len(out.split()) == 1),
            (".venv/bin/mailsms sandbox send", None, lambda out: f"sent from {PHONE}" in out),
            ("ls var/maildir/new/", lambda t: any("Yes, 3pm works" in x for x in t.texts()),
             lambda out: len(out.split()) == 2),
        ]  # fmt: skip
        _walk(term, _block("sandbox send"), first_steps)

        (python,) = _block("smtplib.SMTP(")
        term.run(python)
        wait_until(lambda: len(term.sms()) == 2, what="the Python one-liner's SMS")

        # Two mails, two SMS submitted, two receipts, two status mails and the SMS2Mail
        # mail of the answer: the counters say so.
        def counted(out: str) -> bool:
            return all(
                line in out.splitlines()
                for line in (
                    "mailsms_mails_accepted_total 2.0",
                    "mailsms_orders_accepted_total 2.0",
                    'mailsms_orders_submitted_total{smsc="sandbox"} 2.0',
                    'mailsms_receipts_total{smsc="sandbox",state="delivered"} 2.0',
                    'mailsms_notices_total{kind="status",result="sent"} 2.0',
                )
            )

        monitoring_steps: list[Step] = [
            ("curl -s 127.0.0.1:8025/metrics",
             lambda t: counted(t.run("curl -s 127.0.0.1:8025/metrics")), counted),
            ("curl -s 127.0.0.1:8025/readyz", None, lambda out: '"status":"ready"' in out),
        ]  # fmt: skip
        _walk(term, _block("8025/metrics"), monitoring_steps)

        def status_delivered(t: Terminal) -> bool:
            out = t.run(_block("api-key add")[-1])
            return '"status":"delivered"' in out.split("},{")[0]

        api_steps: list[Step] = [
            (".venv/bin/mailsms api-key add my-app --customer demo", None, lambda out: out == ""),
            ("curl -s -H", None,
             lambda out: '"orders":[{"id":"' in out and '"status":"queued"' in out),
            (".venv/bin/mailsms sandbox inbox", lambda t: "hi" in t.sms(), lambda out: "hi" in out),
            ("curl -s -H", status_delivered,
             lambda out: '"status":"delivered"' in out.split("},{")[0]),
        ]  # fmt: skip
        _walk(term, _block("api-key add"), api_steps)
        assert (tmp_path / "var" / "api-key").read_text().startswith("msk_")

        failure_steps: list[Step] = [
            (".venv/bin/mailsms sandbox fail +491701234567", None, lambda out: PHONE in out),
            ("swaks ", None, lambda out: "250 2.0.0 Ok: queued as" in out),
            (".venv/bin/mailsms orders",
             lambda t: any("not delivered (undeliverable)" in s for s in t.subjects()),
             lambda out: "undeliverable" in out),
            (".venv/bin/mailsms sandbox clear", None, lambda out: "removed 1 rule(s)" in out),
        ]  # fmt: skip
        _walk(term, _block("sandbox fail"), failure_steps)
        # The phone got the first mail's SMS, the one-liner's and the API's, not the failed one.
        assert term.sms() == ["Hello from the bridge", "Hello from the bridge", "hi"]
    # Stopped like Ctrl-C stops `make run`: the bridge finishes cleanly.
    assert bridge.log().rstrip().endswith("bridge: stopped"), bridge.log()
    assert "Traceback" not in bridge.log()
