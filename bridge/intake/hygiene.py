"""Mail hygiene: bare CR/LF and NUL (SMTP smuggling), mail loops, and duplicate deliveries.

Pure code, run on the raw DATA and the extracted headers before a mail is queued.
"""

from __future__ import annotations

import hashlib
import re

from bridge.text.mime import MailText

_BARE = re.compile(rb"(?<!\r)\n|\r(?!\n)|\x00")


def bare_line_ending(raw: bytes) -> str | None:
    """'bare LF', 'bare CR' or 'NUL' when the data has one, else None."""
    match = _BARE.search(raw)
    if match is None:
        return None
    return {b"\n": "bare LF", b"\r": "bare CR", b"\x00": "NUL"}[match.group()]


def normalise_line_endings(raw: bytes) -> bytes:
    """Every bare CR or LF becomes CRLF; NUL bytes are dropped."""
    return re.sub(rb"\r\n|\r|\n", b"\r\n", raw.replace(b"\x00", b""))


def loop_reason(mail: MailText, max_received: int) -> str | None:
    """Why this mail must not become an SMS (an automatic message or a loop), else None."""
    auto = (mail.auto_submitted or "").strip().lower()
    if auto and not auto.startswith("no"):
        return f"it is an automatic message (Auto-Submitted: {auto})"
    precedence = (mail.precedence or "").strip().lower()
    if precedence in ("bulk", "junk", "list"):
        return f"it is bulk or list mail (Precedence: {precedence})"
    if mail.received_count >= max_received:
        return f"it passed {mail.received_count} mail servers (a mail loop)"
    return None


def dedupe_key(message_id: str | None, sender: str, recipients: list[str]) -> str | None:
    """A key that is equal for the same mail delivered twice (None without a Message-ID)."""
    if not message_id:
        return None
    data = "\0".join([message_id.strip(), sender.lower(), *sorted(r.lower() for r in recipients)])
    return hashlib.sha256(data.encode("utf-8", "surrogatepass")).hexdigest()[:40]
