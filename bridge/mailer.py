"""The notice worker: claim due notices, render them, hand them to the relay or the Maildir.

With `mode = "smtp"` each notice goes to the configured relay with aiosmtplib (STARTTLS
off, opportunistic or required); a 4xx reply or a connection problem defers the notice
with backoff, a 5xx fails it. With `mode = "maildir"` (the embedded default) each
notice is written to `maildir/new/` through `tmp/` with fsync, as a local MTA would.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
import traceback
from email.message import Message
from pathlib import Path

import aiosmtplib

from bridge.notices.dsn import build_dsn
from bridge.notices.render import Renderer
from bridge.retry import next_attempt
from bridge.settings import MailerSettings
from bridge.store import notices as notice_sql
from bridge.store.models import utcnow
from bridge.store.notices import NoticeWork
from bridge.store.store import Store

log = logging.getLogger("bridge.mailer")


class DeliveryError(Exception):
    def __init__(self, reason: str, *, permanent: bool) -> None:
        super().__init__(reason)
        self.permanent = permanent


class Mailer:
    def __init__(self, settings: MailerSettings, store: Store, renderer: Renderer) -> None:
        self.settings = settings
        self.store = store
        self.renderer = renderer

    async def step(self) -> int:
        claimed = await self.store.call(
            notice_sql.claim_notices, utcnow(), self.settings.concurrency, 300.0
        )
        if claimed:
            await asyncio.gather(*(self._send(n) for n in claimed))
        return len(claimed)

    async def _send(self, notice: NoticeWork) -> None:
        try:
            sender = self.settings.from_address
            message: Message
            if notice.kind == "dsn":
                sender = ""  # the null reverse-path: nobody answers a DSN (RFC 3461)
                message = build_dsn(
                    notice.context, reporting_mta=self.renderer.hostname, recipient=notice.recipient
                )
            else:
                message = self.renderer.render(notice.kind, notice.recipient, notice.context)
            await self.deliver(message, notice.recipient, sender)
        except DeliveryError as exc:
            await self._failed(notice, str(exc), exc.permanent)
            return
        except Exception:
            tb = traceback.format_exc()
            log.error(
                "notice %s (%s to %s) held after an unexpected error:\n%s",
                notice.id,
                notice.kind,
                notice.recipient,
                tb,
            )
            await self.store.call(notice_sql.record_notice, notice.id, utcnow(), "held", tb)
            return
        await self.store.call(notice_sql.record_notice, notice.id, utcnow(), "sent")
        log.info(
            "notice %s: %s for %s sent to <%s>",
            notice.id,
            notice.kind,
            notice.context.get("order_id", "-"),
            notice.recipient,
        )

    async def _failed(self, notice: NoticeWork, reason: str, permanent: bool) -> None:
        now = utcnow()
        next_at = (
            None
            if permanent
            else next_attempt(
                notice.created_at,
                now,
                minimum=self.settings.retry_min,
                maximum=self.settings.retry_max,
                lifetime=self.settings.lifetime,
            )
        )
        if next_at is None:
            log.error("notice %s to <%s> failed: %s", notice.id, notice.recipient, reason)
            await self.store.call(notice_sql.record_notice, notice.id, now, "failed", reason)
        else:
            log.warning(
                "notice %s to <%s> deferred until %s: %s",
                notice.id,
                notice.recipient,
                next_at,
                reason,
            )
            await self.store.call(
                notice_sql.record_notice, notice.id, now, "deferred", reason, next_at
            )

    async def deliver(self, message: Message, recipient: str, sender: str) -> None:
        if self.settings.mode == "maildir":
            await asyncio.to_thread(write_maildir, self.settings.maildir, message.as_bytes())
            return
        s = self.settings
        try:
            await aiosmtplib.send(
                message,
                sender=sender,
                recipients=[recipient],
                hostname=s.relay_host,
                port=s.relay_port,
                start_tls=None if s.starttls == "opportunistic" else s.starttls == "required",
                username=s.username or None,
                password=s.password or None,
                timeout=s.timeout,
            )
        except aiosmtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"relay answered {exc.code} {exc.message}", permanent=exc.code >= 500
            ) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise DeliveryError(
                f"relay {s.relay_host}:{s.relay_port}: {exc}", permanent=False
            ) from exc


def write_maildir(root: Path, data: bytes) -> Path:
    """Deliver one message into a Maildir (tmp/ → fsync → rename into new/)."""
    for sub in ("tmp", "new", "cur"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    name = f"{time.time():.6f}.P{os.getpid()}R{secrets.token_hex(6)}.{socket.gethostname()}"
    tmp = root / "tmp" / name
    with open(tmp, "wb") as fh:
        fh.write(data.replace(b"\r\n", b"\n"))
        fh.flush()
        os.fsync(fh.fileno())
    final = root / "new" / name
    os.rename(tmp, final)
    fd = os.open(root / "new", os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return final
