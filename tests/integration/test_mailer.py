"""The mailer against a real aiosmtpd sink: rendering, threading, retry on 4xx, fail on 5xx."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Engine, select

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.store import Store, run_sync
from bridge.notices.mailer import Mailer, write_maildir_batch
from bridge.notices.queue import queue_notice
from bridge.notices.render import DEFAULT_TEMPLATES, Renderer
from bridge.notices.settings import MailerSettings
from bridge.notices.tables import Notice
from tests.helpers import STATUS_CONTEXT as CONTEXT
from tests.helpers import smtp_sink

if TYPE_CHECKING:
    import ssl


def _mailer(store: Store, port: int, tmp_path: Path, **kw: object) -> Mailer:
    values: dict[str, object] = {
        "mode": "smtp",
        "relay_port": port,
        "starttls": "off",
        "from_address": "bridge@example.com",
        "retry_min": 60.0,
        "maildir": tmp_path / "md",
        **kw,
    }
    settings = MailerSettings.model_validate(values)
    renderer = Renderer(
        DEFAULT_TEMPLATES,
        from_address="bridge@example.com",
        from_name="SMS Bridge",
        hostname="bridge.test",
    )
    return Mailer(settings, store, renderer)


def _status(engine: Engine) -> list[tuple[str, str]]:
    notice_t = table(Notice)
    with engine.connect() as conn:
        return [(r.status, r.error) for r in conn.execute(select(notice_t))]


def test_a_queued_notice_is_stored_as_given_and_an_unknown_column_refused(
    engine: Engine,
) -> None:
    """`queue_notice` runs one statement compiled once per set of columns: every value
    stored as given (the context as JSON, links such as `order_id`), ids in order; a
    link that is not a column is an error, not dropped."""
    now = utcnow()
    first = run_sync(engine, queue_notice, "status", "a@example.com", CONTEXT, now, customer="")
    second = run_sync(
        engine, queue_notice, "dsn", "b@example.com", {"x": [1, "ü"]}, now,
        customer="acme", order_id="M1.1",
    )  # fmt: skip
    assert 0 < first < second
    with engine.connect() as conn:
        rows = conn.execute(select(table(Notice)).order_by(table(Notice).c.id)).all()
    assert [(r.id, r.kind, r.recipient, r.order_id, r.status, r.attempts) for r in rows] == [
        (first, "status", "a@example.com", None, "queued", 0),
        (second, "dsn", "b@example.com", "M1.1", "queued", 0),
    ]
    assert rows[0].context == {**CONTEXT, "customer": ""}
    assert rows[1].context == {"x": [1, "ü"], "customer": "acme"}
    assert rows[1].next_attempt_at == rows[1].created_at == now
    with pytest.raises(ValueError, match="not columns of a notice: \\['order'\\]"):
        run_sync(engine, queue_notice, "dsn", "c@example.com", {}, now, customer="", order="x")


async def test_status_mail_reaches_the_relay_threaded_and_escaped(
    engine: Engine, store: Store, tmp_path: Path
) -> None:
    run_sync(engine, queue_notice, "status", "alice@example.com", CONTEXT, utcnow(), customer="")
    async with smtp_sink() as (sink, port):
        assert await _mailer(store, port, tmp_path).step() == 1
    [envelope] = sink.envelopes
    assert envelope.mail_from == "bridge@example.com" and envelope.rcpt_tos == ["alice@example.com"]
    [msg] = sink.messages()
    assert msg["In-Reply-To"] == "<orig@client.example>" == msg["References"]
    assert msg["Auto-Submitted"] == "auto-replied"
    assert "not delivered" in msg["Subject"] and "+491701234567" in msg["Subject"]
    assert msg.get_content_type() == "multipart/alternative"
    plain_part, html_part = msg.get_body(("plain",)), msg.get_body(("html",))
    assert plain_part is not None and html_part is not None
    text = plain_part.get_content()
    html = html_part.get_content()
    assert "Meeting at 3 <b>sharp</b> & on time" in text
    assert "Meeting at 3 &lt;b&gt;sharp&lt;/b&gt; &amp; on time" in html and "<b>sharp" not in html
    assert _status(engine) == [("sent", "")]


async def test_temporary_refusal_defers_and_permanent_fails(
    engine: Engine, store: Store, tmp_path: Path
) -> None:
    run_sync(engine, queue_notice, "status", "alice@example.com", CONTEXT, utcnow(), customer="")
    async with smtp_sink() as (sink, port):
        sink.reply = "451 4.3.0 try later"
        mailer = _mailer(store, port, tmp_path)
        assert await mailer.step() == 1
        [(status, error)] = _status(engine)
        assert status == "deferred" and "451" in error
        assert await mailer.step() == 0  # not due again before the backoff
    run_sync(engine, queue_notice, "status", "bob@example.com", CONTEXT, utcnow(), customer="")
    async with smtp_sink() as (sink, port):
        sink.reply = "550 5.1.1 no such user"
        assert await _mailer(store, port, tmp_path).step() == 1
    [(status, error)] = [s for s in _status(engine) if s[0] != "deferred"]
    assert status == "failed" and f"127.0.0.1:{port} answered 550 5.1.1 no such user" in error


async def test_unreachable_relay_defers(engine: Engine, store: Store, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    run_sync(engine, queue_notice, "status", "alice@example.com", CONTEXT, utcnow(), customer="")
    assert await _mailer(store, port, tmp_path, timeout=5.0).step() == 1
    [(status, _)] = _status(engine)
    assert status == "deferred"


async def test_maildir_mode_writes_new_files(engine: Engine, store: Store, tmp_path: Path) -> None:
    run_sync(engine, queue_notice, "status", "alice@example.com", CONTEXT, utcnow(), customer="")
    mailer = _mailer(store, 1, tmp_path)
    mailer.settings = mailer.settings.model_copy(update={"mode": "maildir"})
    assert await mailer.step() == 1
    files = list((tmp_path / "md" / "new").iterdir())
    assert len(files) == 1 and b"In-Reply-To: <orig@client.example>" in files[0].read_bytes()
    assert list((tmp_path / "md" / "tmp").iterdir()) == []


def _spy(monkeypatch: pytest.MonkeyPatch, calls: list[str], fail_fsync: int = 0) -> None:
    """Record the Maildir writer's file writes, fsyncs and renames in order (the real
    calls run); the `fail_fsync`-th fsync fails as a disk would (EIO)."""
    real_write, real_fsync, real_rename = os.write, os.fsync, os.rename

    def write(fd: int, data: bytes) -> int:
        calls.append("write")
        return real_write(fd, data)

    def fsync(fd: int) -> None:
        calls.append("fsync")
        if calls.count("fsync") == fail_fsync:
            raise OSError(errno.EIO, "input/output error")
        real_fsync(fd)

    def rename(src: str, dst: str) -> None:
        calls.append("rename")
        real_rename(src, dst)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "rename", rename)


def test_a_maildir_batch_writes_every_file_before_the_first_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = [f"Subject: {i}\r\n\r\nbody {i}\r\n".encode() for i in range(5)]
    calls: list[str] = []
    _spy(monkeypatch, calls)
    paths = write_maildir_batch(tmp_path / "md", messages)
    # all written, then each fsync'd, then renamed into new/, then one fsync of new/
    assert calls == ["write"] * 5 + ["fsync"] * 5 + ["rename"] * 5 + ["fsync"]
    assert [p.parent for p in paths] == [tmp_path / "md" / "new"] * 5
    assert [p.read_bytes() for p in paths] == [m.replace(b"\r\n", b"\n") for m in messages]
    assert list((tmp_path / "md" / "tmp").iterdir()) == []


def test_a_maildir_batch_whose_fsync_fails_delivers_none_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    _spy(monkeypatch, calls, fail_fsync=3)
    with pytest.raises(OSError, match="input/output error"):
        write_maildir_batch(tmp_path / "md", [b"Subject: x\n\nbody\n"] * 4)
    # nothing in new/ (the step holds every notice of the batch: none is there twice)
    assert list((tmp_path / "md" / "new").iterdir()) == []
    assert list((tmp_path / "md" / "tmp").iterdir()) == []
    assert "rename" not in calls


async def test_a_maildir_step_whose_write_fails_holds_its_notices_and_delivers_none(
    engine: Engine, store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for address in ("alice@example.com", "bob@example.com", "carol@example.com"):
        run_sync(engine, queue_notice, "status", address, CONTEXT, utcnow(), customer="")
    mailer = _mailer(store, 1, tmp_path)
    mailer.settings = mailer.settings.model_copy(update={"mode": "maildir"})
    _spy(monkeypatch, [], fail_fsync=2)
    assert await mailer.step() == 3
    assert [s for s, _ in _status(engine)] == ["held"] * 3
    assert list((tmp_path / "md" / "new").iterdir()) == []


async def _tls_sink(context: ssl.SSLContext, handler: object) -> tuple[object, int]:
    import asyncio

    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="relay.test", tls_context=context, require_starttls=True),
        host="127.0.0.1",
        port=0,
    )
    return server, server.sockets[0].getsockname()[1]


async def test_t2_required_tls_never_falls_back_to_plaintext(
    engine: Engine, store: Store, tmp_path: Path
) -> None:
    run_sync(engine, queue_notice, "status", "alice@example.com", CONTEXT, utcnow(), customer="")
    async with smtp_sink() as (sink, port):  # offers no STARTTLS
        assert await _mailer(store, port, tmp_path, starttls="required").step() == 1
    assert sink.envelopes == []
    [(status, error)] = _status(engine)
    assert status == "deferred" and "STARTTLS" in error


async def test_t3_untrusted_relay_certificate_is_refused(
    engine: Engine, store: Store, tmp_path: Path
) -> None:
    import ssl

    import trustme

    from tests.helpers import SinkHandler

    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    handler = SinkHandler()
    server, port = await _tls_sink(context, handler)
    try:
        run_sync(
            engine, queue_notice, "status", "alice@example.com", CONTEXT, utcnow(), customer=""
        )
        assert await _mailer(store, port, tmp_path, starttls="required").step() == 1
        assert handler.envelopes == []  # certificate not trusted: nothing sent
        [(status, _)] = _status(engine)
        assert status == "deferred"
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        run_sync(engine, queue_notice, "status", "bob@example.com", CONTEXT, utcnow(), customer="")
        mailer = _mailer(store, port, tmp_path, starttls="required", tls_ca_file=ca_file)
        assert await mailer.step() == 1
        assert [e.rcpt_tos for e in handler.envelopes] == [["bob@example.com"]]
    finally:
        server.close()  # type: ignore[attr-defined]
