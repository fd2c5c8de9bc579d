"""The mailer against scripted relays: refusals by stage, EHLO name, TLS levels per domain.

Every relay is a real aiosmtpd server on loopback (tests/peers/smtp_relay.py); STARTTLS
uses certificates from a trustme CA that is not in the system's trust store.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from sqlalchemy import Engine, select

from bridge.db.clock import utcnow
from bridge.db.core import table
from bridge.db.engine import open_engine, upgrade
from bridge.db.store import Store, run_sync
from bridge.metrics import Metrics
from bridge.notices.mailer import LEASE_MARGIN, Mailer
from bridge.notices.queue import queue_notice
from bridge.notices.render import DEFAULT_TEMPLATES, Renderer
from bridge.notices.settings import MailerSettings
from bridge.notices.tables import Notice
from tests.helpers import DSN_CONTEXT, STATUS_CONTEXT, wait_for
from tests.peers.smtp_relay import smtp_relay

pytestmark = pytest.mark.both_loops  # also on uvloop ([server] event_loop)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Engine]:
    engine = open_engine(f"sqlite:///{tmp_path / 'bridge.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
async def st(db: Engine) -> AsyncIterator[Store]:
    store = Store(db)
    yield store
    await store.close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


def mailer(store: Store, tmp_path: Path, metrics: Metrics | None = None, **kw: Any) -> Mailer:
    values: dict[str, Any] = {
        "mode": "smtp",
        "tls": "none",
        "from_address": "bridge@example.com",
        "ehlo_name": "mailsms.example.com",
        "timeout": 10.0,
        **kw,
    }
    renderer = Renderer(
        DEFAULT_TEMPLATES,
        from_address="bridge@example.com",
        from_name="SMS Bridge",
        hostname="mailsms.example.com",
    )
    return Mailer(MailerSettings.model_validate(values), store, renderer, metrics)


def queue(engine: Engine, recipient: str = "alice@example.com") -> int:
    return run_sync(
        engine, queue_notice, "status", recipient, STATUS_CONTEXT, utcnow(), customer=""
    )


def notices(engine: Engine) -> list[tuple[str, str]]:
    notice_t = table(Notice)
    with engine.connect() as conn:
        return [(r.status, r.error) for r in conn.execute(select(notice_t).order_by(notice_t.c.id))]


# --- 1. permanent refusals are permanent, at every stage -------------------------------


@pytest.mark.parametrize(
    ("stage", "reply", "status"),
    [
        ("RCPT", "550 5.1.1 <alice@example.com>: Recipient address rejected", "failed"),
        ("RCPT", "553 5.1.3 bad address syntax", "failed"),
        ("RCPT", "450 4.2.0 <alice@example.com>: Greylisted, try again", "deferred"),
        ("RCPT", "452 4.5.3 too many recipients", "deferred"),
        ("MAIL", "550 5.7.1 sender rejected", "failed"),
        ("MAIL", "451 4.3.0 try again later", "deferred"),
        ("DATA", "554 5.6.0 message content rejected", "failed"),
        ("DATA", "451 4.3.0 queue full", "deferred"),
    ],
)  # fmt: skip
async def test_relay_replies_decide_by_code_at_every_stage(
    db: Engine, st: Store, tmp_path: Path, stage: str, reply: str, status: str
) -> None:
    queue(db)
    async with smtp_relay(replies={stage: reply}) as (relay, port):
        assert await mailer(st, tmp_path, relay_port=port).step() == 1
    [(got, error)] = notices(db)
    assert got == status
    assert reply.split(" ", 2)[1] in error and str(port) in error  # the reply, and who said it
    assert relay.accepted == []


async def test_permanent_refusal_is_shown_and_counted(
    db: Engine, st: Store, tmp_path: Path
) -> None:
    from bridge.notices.queue import count_notices, list_notices

    queue(db)
    queue(db, "bob@example.com")
    async with smtp_relay(replies={"RCPT": "550 5.1.1 no such user"}) as (_, port):
        m = mailer(st, tmp_path, relay_port=port)
        assert await m.step() == 2
    assert m.counts["failed"] == 2
    assert run_sync(db, count_notices) == {("status", "failed"): 2}
    listed = run_sync(db, list_notices, "failed", 10)
    assert {n["recipient"] for n in listed} == {"alice@example.com", "bob@example.com"}
    assert all("550 5.1.1 no such user" in n["error"] for n in listed)

    from typer.testing import CliRunner

    from bridge.cli import app

    config = tmp_path / "bridge.toml"
    config.write_text(
        f'database_url = "sqlite:///{tmp_path / "bridge.db"}"\n[sandbox]\nenabled = true\n'
    )
    result = CliRunner().invoke(app, ["notices", "--status", "failed", "-c", str(config)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("notices: 2 failed\n")
    assert result.output.count("550 5.1.1 no such user") == 2


# --- 2. the EHLO name ---------------------------------------------------------------------


async def test_ehlo_name_defaults_to_the_smtp_hostname(
    db: Engine, st: Store, tmp_path: Path
) -> None:
    """A Postfix with reject_non_fqdn_helo_hostname accepts the bridge's notices."""
    from bridge.settings import Settings

    settings = Settings.model_validate(
        {
            "smtp": {"hostname": "sms-gw.example.net"},
            "sandbox": {"enabled": True},
            "smsc": [{"name": "sandbox", "system_id": "x"}],
            "routes": [{"prefix": "", "transports": ["sandbox"]}],
            "mailer": {"mode": "smtp", "tls": "none"},
        }
    )
    assert settings.mailer.ehlo_name == "sms-gw.example.net"
    queue(db)
    async with smtp_relay(fqdn_helo=True) as (relay, port):
        m = mailer(st, tmp_path, relay_port=port, ehlo_name=settings.mailer.ehlo_name)
        assert await m.step() == 1
    assert [s.helo for s in relay.mails] == ["sms-gw.example.net"]
    assert notices(db) == [("sent", "")]


def test_ehlo_name_must_be_a_host_name(tmp_path: Path) -> None:
    from bridge.errors import ConfigError
    from bridge.settings import load_settings

    path = tmp_path / "bridge.toml"
    path.write_text('[sandbox]\nenabled = true\n[mailer]\nehlo_name = "bad name"\n')
    with pytest.raises(ConfigError, match="ehlo_name: expected a fully qualified host name"):
        load_settings(path, environ={})


# --- 3. TLS levels ---------------------------------------------------------------------------


async def test_encrypt_never_sends_in_plaintext(db: Engine, st: Store, tmp_path: Path) -> None:
    queue(db)
    async with smtp_relay() as (relay, port):  # no STARTTLS offered
        m = mailer(st, tmp_path, relay_port=port, tls="encrypt")
        assert await m.step() == 1
    assert relay.mails == []  # not even MAIL FROM went over the wire
    [(status, error)] = notices(db)
    assert status == "deferred" and "no STARTTLS" in error and "encrypt" in error


async def test_encrypt_per_domain_while_the_default_may_send_plaintext(
    db: Engine, st: Store, tmp_path: Path
) -> None:
    queue(db, "alice@plain.example")
    queue(db, "bob@bank.example")
    async with smtp_relay() as (relay, port):
        m = mailer(
            st,
            tmp_path,
            relay_port=port,
            tls="may",
            delivery=[{"domains": ["bank.example", ".bank.example"], "tls": "encrypt"}],
        )
        assert await m.step() == 2
    assert [e.rcpt_tos for e in relay.accepted] == [["alice@plain.example"]]
    assert relay.encrypted == [False]
    assert [s for s, _ in notices(db)] == ["sent", "deferred"]


async def test_may_and_encrypt_use_starttls_without_checking_the_certificate(
    db: Engine, st: Store, tmp_path: Path, ca: trustme.CA
) -> None:
    queue(db, "alice@example.com")
    queue(db, "bob@bank.example")
    tls = server_context(ca, "relay.test")
    async with smtp_relay(tls=tls) as (relay, port):
        m = mailer(
            st,
            tmp_path,
            relay_port=port,
            tls="may",
            delivery=[{"domains": ["bank.example"], "tls": "encrypt"}],
        )
        assert await m.step() == 2
    assert relay.encrypted == [True, True]
    assert [s for s, _ in notices(db)] == ["sent", "sent"]


async def test_none_never_starts_tls(db: Engine, st: Store, tmp_path: Path, ca: trustme.CA) -> None:
    queue(db)
    async with smtp_relay(tls=server_context(ca, "relay.test")) as (relay, port):
        assert await mailer(st, tmp_path, relay_port=port, tls="none").step() == 1
    assert relay.encrypted == [False]


async def test_verify_refuses_an_untrusted_certificate_and_accepts_with_the_ca(
    db: Engine, st: Store, tmp_path: Path, ca: trustme.CA
) -> None:
    queue(db)
    tls = server_context(ca, "127.0.0.1")
    async with smtp_relay(tls=tls) as (relay, port):
        assert await mailer(st, tmp_path, relay_port=port, tls="verify").step() == 1
        assert relay.mails == []
        [(status, error)] = notices(db)
        assert status == "deferred" and "certificate not trusted" in error

        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        queue(db, "bob@example.com")
        m = mailer(st, tmp_path, relay_port=port, tls="verify", tls_ca_file=ca_file)
        assert await m.step() == 1
    assert [e.rcpt_tos for e in relay.accepted] == [["bob@example.com"]]
    assert relay.encrypted == [True]


async def test_verify_checks_the_relay_name(
    db: Engine, st: Store, tmp_path: Path, ca: trustme.CA
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    queue(db)
    async with smtp_relay(tls=server_context(ca, "other.test")) as (relay, port):
        m = mailer(st, tmp_path, relay_port=port, tls="verify", tls_ca_file=ca_file)
        assert await m.step() == 1
    assert relay.mails == []
    assert notices(db)[0][0] == "deferred"


async def test_secure_matches_the_configured_names(
    db: Engine, st: Store, tmp_path: Path, ca: trustme.CA
) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    queue(db, "alice@partner.example")
    queue(db, "bob@other.example")
    # The relay is reached as 127.0.0.1; its certificate names mx.partner.example only.
    async with smtp_relay(tls=server_context(ca, "mx.partner.example")) as (relay, port):
        m = mailer(
            st,
            tmp_path,
            relay_port=port,
            tls_ca_file=ca_file,
            delivery=[
                {"domains": ["partner.example"], "tls": "secure",
                 "tls_match": [".partner.example"]},
                {"domains": ["other.example"], "tls": "secure", "tls_match": ["other.example"]},
            ],
        )  # fmt: skip
        assert await m.step() == 2
    assert [e.rcpt_tos for e in relay.accepted] == [["alice@partner.example"]]
    [(sent, _), (deferred, error)] = notices(db)
    assert sent == "sent" and deferred == "deferred"
    assert "mx.partner.example" in error and "other.example" in error
    assert [s.mail_from for s in relay.mails] == ["bridge@example.com"]


async def test_per_domain_relay(db: Engine, st: Store, tmp_path: Path) -> None:
    queue(db, "alice@example.com")
    queue(db, "bob@partner.example")
    async with smtp_relay() as (default, port), smtp_relay() as (partner, partner_port):
        m = mailer(
            st,
            tmp_path,
            relay_port=port,
            delivery=[{"domains": ["partner.example"], "next_hop": f"127.0.0.1:{partner_port}"}],
        )
        assert await m.step() == 2
    assert [e.rcpt_tos for e in default.accepted] == [["alice@example.com"]]
    assert [e.rcpt_tos for e in partner.accepted] == [["bob@partner.example"]]


@pytest.mark.parametrize("kind", ["status", "dsn"])
async def test_an_internationalized_domain_goes_as_its_a_label(
    db: Engine, st: Store, tmp_path: Path, kind: str
) -> None:
    """A status mail or DSN to an address with an internationalized domain (a sender who
    wrote from it, a directory entry) goes in the envelope as in the headers, the domain
    as its A-label, and matches a transport rule written either way; it was held with a
    traceback (the SMTP client cannot write a non-ASCII RCPT). A local part that is not
    ASCII would need SMTPUTF8, which the bridge does not speak: failed, with the reason."""
    context = DSN_CONTEXT if kind == "dsn" else STATUS_CONTEXT
    for to in ("jörg@example.com", "joerg@exämple.com", "anna@büro.example"):
        run_sync(db, queue_notice, kind, to, context, utcnow(), customer="")
    async with smtp_relay() as (relay, port), smtp_relay() as (office, office_port):
        m = mailer(
            st,
            tmp_path,
            relay_port=port,
            delivery=[{"domains": ["büro.example"], "next_hop": f"127.0.0.1:{office_port}"}],
        )
        assert await m.step() == 3
    [(s1, e1), (s2, e2), (s3, e3)] = notices(db)
    assert (s1, s2, s3) == ("failed", "sent", "sent"), (e1, e2, e3)
    assert "jörg@example.com" in e1 and "not a mail address" in e1
    assert [e.rcpt_tos for e in relay.accepted] == [["joerg@xn--exmple-cua.com"]]
    assert [e.rcpt_tos for e in office.accepted] == [["anna@xn--bro-hoa.example"]]
    if kind == "status":
        [message] = relay.messages()
        assert message["To"].addresses[0].addr_spec == "joerg@xn--exmple-cua.com"


# --- 4. MX delivery through a real DNS server on loopback ---------------------------------


def zone() -> dict[str, list[tuple[str, str]]]:
    return {
        "partner.test": [("MX", "10 mx1.partner.test."), ("MX", "5 mx0.partner.test.")],
        "mx0.partner.test": [("A", "127.0.0.2")],  # nothing listens there
        "mx1.partner.test": [("A", "127.0.0.1")],
        "nomail.test": [("MX", "0 .")],
        "implicit.test": [("A", "127.0.0.1")],
        "broken.test": [("MX", "10 mx.broken.test.")],
    }


async def test_mx_delivery_follows_preferences_and_checks_the_mx_name(
    db: Engine, st: Store, tmp_path: Path, ca: trustme.CA
) -> None:
    from tests.peers.dns_server import dns_server, port_of

    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    queue(db, "alice@partner.test")
    queue(db, "bob@implicit.test")
    tls = server_context(ca, "mx1.partner.test", "implicit.test")
    async with dns_server(zone()) as dns, smtp_relay(tls=tls) as (relay, port):
        m = mailer(
            st,
            tmp_path,
            mx_port=port,
            dns_servers=[f"127.0.0.1:{port_of(dns)}"],
            tls_ca_file=ca_file,
            delivery=[
                {"domains": ["partner.test"], "next_hop": "mx", "tls": "verify"},
                {"domains": ["*"], "next_hop": "mx", "tls": "secure"},
            ],
        )
        assert await m.step() == 2
    assert notices(db) == [("sent", ""), ("sent", "")]
    assert sorted(e.rcpt_tos[0] for e in relay.accepted) == [
        "alice@partner.test",
        "bob@implicit.test",
    ]
    assert relay.encrypted == [True, True]
    asked = [q for q in dns.queries if q[1] in ("MX", "A")]
    assert asked.index(("mx0.partner.test", "A")) < asked.index(("mx1.partner.test", "A"))


@pytest.mark.parametrize(
    ("recipient", "status", "reason"),
    [
        ("a@nomail.test", "failed", "accepts no mail (null MX"),
        ("a@missing.test", "failed", "no such domain"),
        ("a@broken.test", "deferred", "no reachable mail host"),
        ("a@servfail.test", "deferred", "DNS lookup of MX failed"),
    ],
)
async def test_mx_lookup_failures(
    db: Engine, st: Store, tmp_path: Path, recipient: str, status: str, reason: str
) -> None:
    from tests.peers.dns_server import dns_server, port_of

    queue(db, recipient)
    async with dns_server(zone(), servfail={"servfail.test"}) as dns:
        m = mailer(
            st,
            tmp_path,
            mx_port=1,
            timeout=3.0,
            dns_servers=[f"127.0.0.1:{port_of(dns)}"],
            delivery=[{"domains": ["*"], "next_hop": "mx"}],
        )
        assert await m.step() == 1
    [(got, error)] = notices(db)
    assert got == status and reason in error


# --- 5. one attempt has attempt_timeout in all, inside its claim's lease -----------------


@pytest.mark.parametrize(("delay", "status"), [(0.2, "sent"), (0.8, "deferred")])
async def test_a_slow_relay_has_attempt_timeout_in_all(
    db: Engine, st: Store, tmp_path: Path, delay: float, status: str
) -> None:
    """Each answer comes within `timeout` (1 s), but MAIL, RCPT and DATA take 2.4 s
    together at 0.8 s each: past `attempt_timeout` (2 s) the notice is deferred, so the
    attempt never outlives its claim (attempt_timeout + 60 s) and no second worker sends
    it meanwhile."""
    queue(db)
    async with smtp_relay(delay=delay) as (_relay, port):
        m = mailer(st, tmp_path, relay_port=port, timeout=1.0, attempt_timeout=2.0)
        assert m.settings.attempt_timeout + LEASE_MARGIN == 62.0
        assert await m.step() == 1
    [(got, error)] = notices(db)
    assert got == status, error
    if status == "deferred":
        assert error == (
            "not delivered within attempt_timeout = 2 s: the mail hosts answer too slowly"
        )


# --- 6. sessions kept for the next notice ---------------------------------------------------


def sessions(metrics: Metrics) -> dict[str, int]:
    """mailsms_mailer_sessions_total by event."""
    return {
        event: int(
            metrics.registry.get_sample_value("mailsms_mailer_sessions_total", {"event": event})
            or 0
        )
        for event in ("opened", "reused", "ended_by_relay")
    }


async def drain(m: Mailer) -> int:
    """Steps until the queue is empty; the notices sent."""
    sent = 0
    while n := await m.step():
        sent += n
    return sent


async def test_a_session_is_kept_for_the_next_notices(
    db: Engine, st: Store, tmp_path: Path, ca: trustme.CA
) -> None:
    """Six notices, two at a time: two sessions (connect, EHLO, STARTTLS, EHLO each),
    then MAIL at once over them; each mail once; both sessions closed with QUIT at stop."""
    for i in range(6):
        queue(db, f"user{i}@example.com")
    metrics = Metrics.unregistered()
    async with smtp_relay(tls=server_context(ca, "relay.test")) as (relay, port):
        m = mailer(st, tmp_path, metrics, relay_port=port, tls="encrypt", concurrency=2)
        assert await drain(m) == 6
        assert sessions(metrics) == {"opened": 2, "reused": 4, "ended_by_relay": 0}
        assert relay.connections == 2 and relay.quits == 0
        assert len(m.client.sessions) == 2
        await m.close()
        assert len(m.client.sessions) == 0
        await wait_for(lambda: relay.quits == 2)
    assert sorted(e.rcpt_tos[0] for e in relay.accepted) == [
        f"user{i}@example.com" for i in range(6)
    ]
    assert relay.encrypted == [True] * 6
    assert [s for s, _ in notices(db)] == ["sent"] * 6


async def test_an_idle_session_is_closed_after_connection_cache_time(
    db: Engine, st: Store, tmp_path: Path
) -> None:
    queue(db)
    async with smtp_relay() as (relay, port):
        m = mailer(st, tmp_path, relay_port=port, connection_cache_time=0.2)
        assert await m.step() == 1
        assert len(m.client.sessions) == 1
        await wait_for(lambda: relay.quits == 1)  # QUIT, not a dropped connection
        assert len(m.client.sessions) == 0
        queue(db, "bob@example.com")
        assert await m.step() == 1
    assert relay.connections == 2
    assert [s for s, _ in notices(db)] == ["sent", "sent"]


@pytest.mark.parametrize(
    ("settings", "connections"),
    [
        ({"connection_reuse_count": 2}, 3),  # 2 + 2 + 1 mails
        ({"connection_reuse_time": 0.001}, 5),  # too old for the next mail every time
        ({"connection_cache_time": 0}, 5),  # never kept: one session per notice
    ],
)
async def test_a_session_carries_a_bounded_number_of_mails(
    db: Engine, st: Store, tmp_path: Path, settings: dict[str, Any], connections: int
) -> None:
    for i in range(5):
        queue(db, f"user{i}@example.com")
    async with smtp_relay() as (relay, port):
        m = mailer(st, tmp_path, relay_port=port, concurrency=1, **settings)
        assert await drain(m) == 5
        await m.close()
        await wait_for(lambda: relay.quits == connections)
    assert relay.connections == connections
    assert len(relay.accepted) == 5


@pytest.mark.parametrize(
    "over_limit",
    ["421 4.7.0 too many messages in this session, closing", ""],
    ids=["421-at-mail", "closed-without-a-word"],
)
async def test_a_kept_session_the_relay_ended_is_replaced_without_a_second_copy(
    db: Engine, st: Store, tmp_path: Path, over_limit: str
) -> None:
    """A relay that takes one mail per session and then ends it at the next MAIL, with a
    421 or by closing the connection: each notice goes over a new session at once (not
    deferred), and the relay has each exactly once."""
    for i in range(3):
        queue(db, f"user{i}@example.com")
    metrics = Metrics.unregistered()
    async with smtp_relay(mails_per_session=1, over_limit=over_limit) as (relay, port):
        m = mailer(st, tmp_path, metrics, relay_port=port, concurrency=1)
        assert await drain(m) == 3
        await m.close()
    assert sessions(metrics) == {"opened": 3, "reused": 0, "ended_by_relay": 2}
    assert [s for s, _ in notices(db)] == ["sent"] * 3
    assert [e.rcpt_tos for e in relay.accepted] == [[f"user{i}@example.com"] for i in range(3)]
    assert relay.connections == 3


async def test_a_session_the_relay_timed_out_is_not_used(
    db: Engine, st: Store, tmp_path: Path
) -> None:
    """aiosmtpd's idle timeout (as Postfix's smtpd_timeout): 421 and closed while kept."""
    queue(db)
    async with smtp_relay(timeout=0.2) as (relay, port):
        m = mailer(st, tmp_path, relay_port=port)
        assert await m.step() == 1
        await asyncio.sleep(0.5)
        queue(db, "bob@example.com")
        assert await m.step() == 1
        await m.close()
    assert [s for s, _ in notices(db)] == ["sent", "sent"]
    assert relay.connections == 2 and len(relay.accepted) == 2


@pytest.mark.parametrize("kept", [False, True], ids=["new-session", "kept-session"])
async def test_a_refused_mail_ends_its_session(
    db: Engine, st: Store, tmp_path: Path, kept: bool
) -> None:
    """A 550 to RCPT fails the notice at once, whether its session was new or kept from
    the mail before, and the session is closed, not kept: the next notice goes over a
    new one."""
    if kept:
        queue(db, "alice@example.com")
    queue(db, "gone@example.com")
    queue(db, "bob@example.com")
    async with smtp_relay() as (relay, port):
        m = mailer(st, tmp_path, relay_port=port, concurrency=1)
        if kept:
            assert await m.step() == 1
            assert len(m.client.sessions) == 1
        relay.replies["RCPT"] = "550 5.1.1 <gone@example.com>: Recipient address rejected"
        assert await m.step() == 1
        assert len(m.client.sessions) == 0  # closed, not kept
        del relay.replies["RCPT"]
        assert await m.step() == 1
        await m.close()
    statuses = [s for s, _ in notices(db)]
    assert statuses == (["sent"] if kept else []) + ["failed", "sent"]
    assert "550 5.1.1" in notices(db)[-2][1]
    assert relay.connections == 2
    assert [e.rcpt_tos[0] for e in relay.accepted] == (["alice@example.com"] if kept else []) + [
        "bob@example.com"
    ]


async def test_a_reply_left_over_on_a_session_is_not_taken_for_the_next_mails(
    db: Engine, st: Store, tmp_path: Path
) -> None:
    """A relay that answers a mail's DATA twice leaves its second reply on the session:
    kept, the next mail would read it as the reply to its MAIL, and every reply after it
    as the one to the command before (a 554 to DATA seen as "250 to DATA", deferred
    instead of failed). A session with unread replies is closed, not kept."""
    for rcpt in ("alice@example.com", "refused@example.com", "bob@example.com"):
        queue(db, rcpt)
    async with smtp_relay() as (relay, port):
        m = mailer(st, tmp_path, relay_port=port, concurrency=1)
        relay.replies["DATA"] = "250 2.0.0 OK queued\r\n250 2.0.0 OK queued again"
        assert await m.step() == 1
        assert len(m.client.sessions) == 0  # not kept
        relay.replies["DATA"] = "554 5.6.0 message content rejected"
        assert await m.step() == 1
        del relay.replies["DATA"]
        assert await m.step() == 1
        await m.close()
    ended = notices(db)
    assert [s for s, _ in ended] == ["sent", "failed", "sent"], ended
    assert "554 5.6.0" in ended[1][1]
    assert [e.rcpt_tos for e in relay.accepted] == [["bob@example.com"]]


async def test_sessions_are_kept_apart_by_their_tls_rules(
    db: Engine, st: Store, tmp_path: Path, ca: trustme.CA
) -> None:
    """One relay, two domains: bank.example under `encrypt`, the rest under `none`. Their
    notices take turns; each goes over a session made under its own rules — never a
    plaintext one kept from the other domain, nor the other way round."""
    recipients = [f"{u}@{'bank.example' if u % 2 else 'example.com'}" for u in range(6)]
    for rcpt in recipients:
        queue(db, rcpt)
    async with smtp_relay(tls=server_context(ca, "relay.test")) as (relay, port):
        m = mailer(
            st,
            tmp_path,
            relay_port=port,
            tls="none",
            concurrency=1,
            delivery=[{"domains": ["bank.example"], "tls": "encrypt"}],
        )
        assert await drain(m) == 6
        await m.close()
    assert [e.rcpt_tos[0] for e in relay.accepted] == recipients
    assert relay.encrypted == [r.endswith("bank.example") for r in recipients]
    assert relay.connections == 2
