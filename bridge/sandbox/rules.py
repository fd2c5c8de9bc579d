"""Sandbox rules: what the sandbox SMSC does with the SMS to one number or to a prefix.

A rule matches `+491701234567` exactly or, written `+49170*`, every number starting so;
an exact rule beats a prefix, a longer prefix a shorter one. It can fail the SMS in one
of the ways a real network does (`Failure`) and delay it: the phone gets the SMS, and
the bridge the receipt, `delay` seconds after the submit.

Rules come from the settings (`[[sandbox.rules]]`) and from a rules file (JSON) that
`mailsms sandbox fail|delay|clear` writes; the running sandbox reads the file again
whenever it changed, so a rule set while `mailsms serve` runs applies to the next SMS.
A file rule comes before a settings rule for the same number.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

from bridge.errors import InputError

log: Final = logging.getLogger(__name__)

_PATTERN: Final = re.compile(r"\+[0-9]{1,15}\*?")


class Failure(StrEnum):
    """How a rule makes the SMS fail (what the bridge then shows)."""

    UNDELIVERABLE = "undeliverable"  # receipt UNDELIV: order undeliverable, status mail
    EXPIRED = "expired"  # receipt EXPIRED: order undeliverable (not reached in time), status mail
    REJECTED = "rejected"  # submit_sm refused for good (ESME_RINVDSTADR): order failed at once
    BUSY = "busy"  # submit_sm refused for now (ESME_RSYSERR): order deferred, retried
    SILENT = "silent"  # accepted, then no receipt ever: the order waits until it expires


FAILURE_HELP: Final = {
    Failure.UNDELIVERABLE: "a failed receipt (UNDELIV): the order is undeliverable",
    Failure.EXPIRED: "an EXPIRED receipt (phone not reached in time): the order is undeliverable",
    Failure.REJECTED: "submit_sm refused (ESME_RINVDSTADR): the order fails at once",
    Failure.BUSY: "submit_sm refused for now (ESME_RSYSERR): the order is retried",
    Failure.SILENT: "accepted but never a receipt: the order waits until its validity ends",
}


class RuleError(InputError, ValueError):
    """A rule or a rules file is not valid (the message says how to fix it)."""


def check_number(text: str) -> str:
    """`text` as a rule's number ("+491701234567" or "+49170*"), spaces removed."""
    number = "".join(text.split())
    if not _PATTERN.fullmatch(number):
        raise RuleError(
            f"number {text!r}: expected an international number like +491701234567, "
            "or a prefix like +49170* for every number starting so"
        )
    return number


@dataclass(frozen=True, slots=True)
class SandboxRule:
    """Fail and/or delay the SMS to `number` (a number, or a prefix ending in *)."""

    number: str
    fail: Failure | None = None
    delay: float | None = None

    def matches(self, destination: str) -> bool:
        digits = "+" + destination.strip().lstrip("+")
        if self.number.endswith("*"):
            return digits.startswith(self.number[:-1])
        return digits == self.number

    def describe(self) -> str:
        what = [f"fail: {FAILURE_HELP[self.fail]}"] if self.fail else []
        if self.delay is not None:
            what.append(f"the phone gets it (and the receipt goes) after {self.delay:g} s")
        return f"{self.number:<16} " + ("; ".join(what) or "delivered as usual")


def make_rule(number: str, fail: str | None = None, delay: float | None = None) -> SandboxRule:
    """A checked rule; RuleError names what is wrong."""
    try:
        failure = Failure(fail) if fail else None
    except ValueError:
        raise RuleError(
            f"fail {fail!r}: expected one of {', '.join(f.value for f in Failure)}"
        ) from None
    if delay is not None and not 0 <= delay <= 86_400 * 7:
        raise RuleError(f"delay {delay}: expected seconds between 0 and 604800")
    return SandboxRule(check_number(number), failure, delay)


def pick(rules: Sequence[SandboxRule], destination: str) -> SandboxRule | None:
    """The rule for `destination`: exact before prefix, longer prefix first, earlier first."""
    best: SandboxRule | None = None
    best_rank = -1
    for rule in rules:
        if not rule.matches(destination):
            continue
        rank = 100 if not rule.number.endswith("*") else len(rule.number)
        if rank > best_rank:
            best, best_rank = rule, rank
    return best


def with_rule(rules: Sequence[SandboxRule], rule: SandboxRule) -> list[SandboxRule]:
    """`rules` with `rule` in place of the one for the same number (or added at the end)."""
    out = [r for r in rules if r.number != rule.number]
    at = next((i for i, r in enumerate(rules) if r.number == rule.number), len(out))
    out.insert(at, rule)
    return out


def read_file(path: Path) -> list[SandboxRule]:
    """The rules in `path` ([] when it does not exist); RuleError when it is not valid."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise RuleError(f"{path}: not a rules file ({exc})") from None
    if not isinstance(data, list):
        raise RuleError(f"{path}: expected a JSON list of rules")
    try:
        return [make_rule(str(d["number"]), d.get("fail"), d.get("delay")) for d in data]
    except (KeyError, TypeError, AttributeError) as exc:
        raise RuleError(f"{path}: every rule needs a number ({exc})") from None


def write_file(path: Path, rules: Sequence[SandboxRule]) -> None:
    """Replace `path` by `rules` at once (a reader sees the old or the new file, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = [
        {"number": r.number, "fail": r.fail.value if r.fail else None, "delay": r.delay}
        for r in rules
    ]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class RuleBook:
    """The rules in force: the file's (re-read when it changed), then the settings'."""

    def __init__(self, configured: Sequence[SandboxRule], path: Path | None) -> None:
        self.configured = tuple(configured)
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self._from_file: tuple[SandboxRule, ...] = ()

    def rules(self) -> tuple[SandboxRule, ...]:
        if self.path is not None:
            self._refresh(self.path)
        return self._from_file + self.configured

    def pick(self, destination: str) -> SandboxRule | None:
        return pick(self.rules(), destination)

    def _refresh(self, path: Path) -> None:
        try:
            st = path.stat()
        except FileNotFoundError:
            self._seen, self._from_file = None, ()
            return
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        if seen == self._seen:
            return
        self._seen = seen
        try:
            self._from_file = tuple(read_file(path))
        except RuleError as exc:
            log.warning("sandbox: rules file ignored until it is fixed: %s", exc)
            self._from_file = ()
        else:
            log.info("sandbox: %d rule(s) from %s", len(self._from_file), path)
