"""Who may send: TLS, client networks and AUTH hold whatever the greeting; no customer is open by
default; AUTH guessing is limited across connections (S6, S7, S9 and the HELO bypass)."""

from __future__ import annotations

import asyncio
import base64
import logging
import subprocess
import sys
from pathlib import Path

import aiosmtplib
import pytest
import trustme

from bridge.db.engine import open_engine, upgrade
from bridge.db.store import run_sync
from bridge.intake.access_store import set_access
from bridge.settings import Settings
from bridge.tenants.admin import add_customer, add_user
from bridge.tenants.logins import add_credential
from tests.conftest import make_settings
from tests.helpers import make_mail, running_bridge
from tests.security.common import client_context, greeted, orders, tls_settings
from tests.smtp_probe import RawSmtp

MAILSMS = str(Path(sys.executable).parent / "mailsms")


@pytest.mark.parametrize("greeting", ["HELO probe", "EHLO probe"])
async def test_tls_is_required_outside_plaintext_networks_whatever_the_greeting(
    tmp_path: Path, ca: trustme.CA, greeting: str
) -> None:
    async with running_bridge(tls_settings(tmp_path, ca)) as (_, ep):
        outside = await greeted(*ep.smtp, local="127.0.0.2", ehlo=greeting)
        assert (await outside.command("MAIL FROM:<demo@example.com>")).startswith("530 5.7.0")
        assert (await outside.command("RCPT TO:<+491701234567@eu.rsms.net>")).startswith("503")
        await outside.close()
        inside = await greeted(*ep.smtp, local="127.0.0.1", ehlo=greeting)
        assert (await inside.command("MAIL FROM:<demo@example.com>")).startswith("250")
        await inside.close()
    assert orders(tmp_path) == []


@pytest.mark.parametrize("greeting", ["HELO acme", "EHLO acme"])
async def test_customer_rules_hold_whatever_the_greeting(tmp_path: Path, greeting: str) -> None:
    async with running_bridge(make_settings(tmp_path)) as (bridge, ep):
        assert bridge.store is not None
        engine = bridge.store.engine
        run_sync(engine, add_customer, "acme", {"access": {"networks": ["127.0.0.1/32"]}})
        run_sync(engine, add_user, "ops@acme.example", "acme")
        run_sync(engine, add_customer, "vault", {"access": {"networks": ["127.0.0.0/8"]}})
        run_sync(engine, set_access, "vault", {"require_auth": True})
        run_sync(engine, add_user, "ops@vault.example", "vault")
        for local, sender, expected in (
            ("127.0.0.3", "ops@acme.example", "550 5.7.1"),  # outside the client networks
            ("127.0.0.1", "ops@acme.example", "250"),
            ("127.0.0.1", "ops@vault.example", "530 5.7.0"),  # AUTH required
        ):
            c = await greeted(*ep.smtp, local=local, ehlo=greeting)
            answer = await c.command(f"MAIL FROM:<{sender}>")
            await c.close()
            assert answer.startswith(expected), (local, sender, answer)


async def test_a_customer_without_networks_sends_only_after_auth(
    tmp_path: Path, ca: trustme.CA
) -> None:
    async with running_bridge(tls_settings(tmp_path, ca)) as (bridge, ep):
        assert bridge.store is not None
        engine = bridge.store.engine
        run_sync(engine, add_customer, "fresh", {})  # as `mailsms customer add` makes it
        run_sync(engine, add_user, "anna@fresh.example", "fresh")
        run_sync(engine, add_credential, "fresh-mta", "fresh", "long-secret-1")
        # Anyone who knows the address, even from the plaintext networks: refused.
        c = await greeted(*ep.smtp, local="127.0.0.1")
        answer = await c.command("MAIL FROM:<anna@fresh.example>")
        await c.close()
        assert answer.startswith("530 5.7.0") and "authenticate" in answer, answer
        # With AUTH as a login of the customer: accepted.
        async with aiosmtplib.SMTP(
            hostname=ep.smtp[0], port=ep.smtp[1], tls_context=client_context(ca), start_tls=True
        ) as smtp:
            await smtp.login("fresh-mta", "long-secret-1")
            await smtp.sendmail("anna@fresh.example", ["+491701234567@eu.rsms.net"], make_mail())
    assert [r for r, _ in orders(tmp_path)] == ["+491701234567"]


def _mailsms(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MAILSMS, *args, "-c", str(config)], capture_output=True, text=True, timeout=60
    )


def test_customer_add_says_how_users_may_send_and_config_check_warns(tmp_path: Path) -> None:
    make_settings(tmp_path)  # writes tmp_path/bridge.toml
    config = tmp_path / "bridge.toml"
    assert _mailsms(config, "db", "upgrade").returncode == 0
    added = _mailsms(config, "customer", "add", "acme")
    assert added.returncode == 0, added.stderr
    assert "cannot send yet" in added.stdout and "--network" in added.stdout
    assert "login add" in added.stdout
    with_net = _mailsms(config, "customer", "add", "beta", "--network", "10.1.0.0/16")
    assert "may send from 10.1.0.0/16" in with_net.stdout
    world = _mailsms(config, "customer", "access", "beta", "--network", "0.0.0.0/0")
    assert world.returncode == 0, world.stderr
    checked = _mailsms(config, "config", "check")
    assert checked.returncode == 0
    assert "customer beta open to the world" in checked.stderr
    assert "customer acme has no client networks and no login" in checked.stderr
    _mailsms(config, "customer", "access", "beta", "--require-auth")
    assert "customer beta" not in _mailsms(config, "config", "check").stderr


async def test_start_up_warns_about_customers_open_to_the_world(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path)
    engine = open_engine(settings.database_url)
    upgrade(engine)
    run_sync(engine, add_customer, "wide", {"access": {"networks": ["0.0.0.0/0", "::/0"]}})
    engine.dispose()
    with caplog.at_level(logging.WARNING, logger="bridge"):
        async with running_bridge(settings):
            pass
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("customer wide open to the world") for m in warnings), warnings


async def _auth(
    host: str, port: int, ca: trustme.CA, local: str, login: str | bytes, pw: str
) -> str:
    """One session: STARTTLS, AUTH PLAIN; the reply to AUTH."""
    c = await greeted(host, port, local=local)
    await c.command("STARTTLS")
    await c.starttls(client_context(ca))
    await c.command("EHLO probe")
    user = login if isinstance(login, bytes) else login.encode()
    token = base64.b64encode(b"\0" + user + b"\0" + pw.encode()).decode()
    answer = await c.command(f"AUTH PLAIN {token}", timeout=30)
    await c.close()
    return answer


def _fast_auth(tmp_path: Path, ca: trustme.CA, **limits: object) -> Settings:
    """TLS settings with AUTH failure delays short enough for a test."""
    return tls_settings(
        tmp_path, ca, auth_failure_delay=0.01, auth_failure_delay_max=0.02, **limits
    )


async def test_s7_parallel_auth_guessing_locks_the_address_after_the_limit(
    tmp_path: Path, ca: trustme.CA, caplog: pytest.LogCaptureFixture
) -> None:
    settings = _fast_auth(tmp_path, ca)
    with caplog.at_level(logging.INFO, logger="bridge.intake"):
        async with running_bridge(settings) as (bridge, ep):
            assert bridge.store is not None
            run_sync(bridge.store.engine, add_credential, "sap-prod", "demo", "right-password")
            answers = await asyncio.gather(
                *(_auth(*ep.smtp, ca, "127.0.0.2", "sap-prod", f"guess-{i}") for i in range(45))
            )
            # Locked now: even the right password is refused from this address ...
            locked = await _auth(*ep.smtp, ca, "127.0.0.2", "sap-prod", "right-password")
            # ... while another address may log in.
            other = await _auth(*ep.smtp, ca, "127.0.0.3", "sap-prod", "right-password")
    codes = [a[:3] for a in answers]
    assert codes.count("535") == 10, codes  # guesses actually checked: the limit
    assert codes.count("421") == 35, codes
    assert locked.startswith("421 4.7.0") and "failed logins" in locked
    assert locked.rstrip().endswith("try again in 15 minutes"), locked
    assert other.startswith("235"), other
    lockouts = [r.getMessage() for r in caplog.records if "AUTH locked" in r.getMessage()]
    assert len(lockouts) == 1 and "127.0.0.2" in lockouts[0], lockouts


async def test_auth_whose_failures_cannot_be_counted_now_is_refused_for_now_not_locked(
    tmp_path: Path, ca: trustme.CA
) -> None:
    """The counts of failed logins out of reach (their lock held by another process, or
    no room for a new client): the AUTH gets 454 4.7.0 (RFC 4954's temporary failure),
    no password is checked, nothing is counted, and the session may try again. It was
    told that its address was locked out."""
    async with running_bridge(_fast_auth(tmp_path, ca)) as (bridge, ep):
        assert bridge.store is not None and bridge._shared is not None
        run_sync(bridge.store.engine, add_credential, "sap-prod", "demo", "right-password")
        table = bridge._shared.auth.table
        table.wait = 0.2
        assert table.lock.acquire()  # as a process stopped while it held the lock
        try:
            busy = await _auth(*ep.smtp, ca, "127.0.0.2", "sap-prod", "right-password")
        finally:
            table.lock.release()
        fine = await _auth(*ep.smtp, ca, "127.0.0.2", "sap-prod", "right-password")
    assert busy.startswith("454 4.7.0 Temporary authentication failure"), busy
    assert fine.startswith("235"), fine


async def test_s7_guessing_one_login_from_many_addresses_locks_the_login(
    tmp_path: Path, ca: trustme.CA
) -> None:
    settings = _fast_auth(tmp_path, ca, auth_max_failures_per_login=6)
    async with running_bridge(settings) as (bridge, ep):
        assert bridge.store is not None
        run_sync(bridge.store.engine, add_credential, "sap-prod", "demo", "right-password")
        answers = [
            await _auth(*ep.smtp, ca, f"127.0.0.{10 + i}", "sap-prod", f"guess-{i}")
            for i in range(8)
        ]
        fresh = await _auth(*ep.smtp, ca, "127.0.0.99", "sap-prod", "right-password")
        other_login = await _auth(*ep.smtp, ca, "127.0.0.99", "nobody", "x")
    assert [a[:3] for a in answers] == ["535"] * 6 + ["421"] * 2
    assert fresh.startswith("421 4.7.0"), fresh  # the login is locked, from anywhere
    assert other_login.startswith("535"), other_login


async def test_auth_with_bad_bytes_in_the_login_is_a_failed_login(
    tmp_path: Path, ca: trustme.CA
) -> None:
    async with running_bridge(_fast_auth(tmp_path, ca)) as (_, ep):
        answer = await _auth(*ep.smtp, ca, "127.0.0.2", b"sap\xff\x01", "x")
    assert answer.startswith("535 5.7.8"), answer


async def test_plaintext_session_gets_no_auth(tmp_path: Path, ca: trustme.CA) -> None:
    async with running_bridge(tls_settings(tmp_path, ca)) as (_, ep):
        c = await RawSmtp.connect(*ep.smtp, local="127.0.0.2")
        await c.read_reply()
        assert (await c.command("HELO probe")).startswith("250")
        assert (await c.command("AUTH PLAIN AGEAYg==")).startswith("500")  # not after HELO
        await c.close()


def test_demo_customer_sends_from_this_machine_only(tmp_path: Path) -> None:
    from bridge.intake.access import CustomerAccess
    from bridge.tenants.admin import ensure_demo, list_customers

    settings = make_settings(tmp_path)
    engine = open_engine(settings.database_url)
    upgrade(engine)
    run_sync(engine, ensure_demo)
    demo = run_sync(engine, list_customers)[0]
    engine.dispose()
    access = CustomerAccess.from_settings(demo.settings)
    assert access.networks == ("127.0.0.0/8", "::1/128")


async def test_require_tls_of_a_customer_holds_for_helo(tmp_path: Path) -> None:
    async with running_bridge(make_settings(tmp_path)) as (bridge, ep):
        assert bridge.store is not None
        access = {"networks": ["127.0.0.0/8"], "require_tls": True}
        run_sync(bridge.store.engine, add_customer, "strict", {"access": access})
        run_sync(bridge.store.engine, add_user, "ops@strict.example", "strict")
        c = await greeted(*ep.smtp, ehlo="HELO strict")
        answer = await c.command("MAIL FROM:<ops@strict.example>")
        await c.close()
    assert answer.startswith("530 5.7.0"), answer
