"""The preview page over HTTP: a pasted text or an .eml → parts, encoding, replacements,
under the page customer's policy; bad input and CSRF-less posts refused with a sentence."""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update

from bridge.db.core import table
from bridge.db.store import run_sync
from bridge.tenants.tables import Customer
from tests.portal.harness import PortalRun, hidden_fields, login, portal

TEXT = "“Smart quotes” cost 5 € – today"
NO_FILE = {"eml": ("", b"", "application/octet-stream")}


def facts(html: str) -> dict[str, str]:
    return {
        k: re.sub(r"<[^>]+>", "", v).strip()
        for k, v in re.findall(r"<dt>([^<]+)</dt><dd[^>]*>(.*?)</dd>", html, re.S)
    }


def replaced(html: str) -> list[tuple[str, str]]:
    table_ = re.search(r'<table class="replaced">.*?</table>', html, re.S)
    if table_ is None:
        return []
    return re.findall(r"<tr><td>([^<]*)</td><td>(?:<span[^>]*>)?([^<]*)", table_.group(0))


async def post(
    web: httpx.AsyncClient, csrf: str, path: str = "/portal/preview", **files: Any
) -> httpx.Response:
    data = {"csrf": csrf, **{k: v for k, v in files.items() if isinstance(v, str)}}
    upload = {k: v for k, v in files.items() if not isinstance(v, str)} or NO_FILE
    return await web.post(path, data=data, files=upload)


def acme_policy(run: PortalRun, settings: dict[str, Any]) -> None:
    customers = table(Customer)
    assert run.bridge.store is not None
    run_sync(
        run.bridge.store.engine,
        lambda c: c.execute(
            update(customers).where(customers.c.name == "acme").values(settings=settings)
        ),
    )


async def test_a_pasted_text_shows_encoding_parts_and_replacements(tmp_path: Path) -> None:
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "admin")
        form = await web.get("/portal/preview")
        assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
        r = await post(web, csrf, text=TEXT)
        assert r.status_code == 200, r.text
        f = facts(r.text)
        # “ ” and – become GSM-7 characters; € is in GSM-7's extension table (2 septets).
        assert f["Encoding"] == f"GSM-7, {len(TEXT) + 1} septets"
        assert f["Parts"] == "1 (at most 10 allowed)"
        assert replaced(r.text) == [("“", "&#34;"), ("”", "&#34;"), ("–", "-")]
        assert "&#34;Smart quotes&#34; cost 5 € - today" in r.text  # the SMS as sent
        assert "Smart quotes" in r.text and "<textarea" in r.text  # the text stays in the form


async def test_the_policy_is_the_viewers_customers(tmp_path: Path) -> None:
    async with portal(tmp_path) as run:
        acme_policy(run, {"default_country": "DE", "replacement": "ucs2", "max_parts": 3})
        async with run.client() as acme, run.client() as ops, run.client() as demo:
            acme_csrf = await login(acme, "acme-admin")
            ops_csrf = await login(ops, "ops")
            demo_csrf = await login(demo, "admin")
            # acme keeps the characters (UCS-2) where the defaults replace them.
            f = facts((await post(acme, acme_csrf, text=TEXT)).text)
            assert f["Encoding"] == f"UCS-2, {len(TEXT)} UTF-16 units"
            assert f["Parts"] == "1 (at most 3 allowed)"
            # Naming another customer does not give a customer admin its policy.
            r = await post(acme, acme_csrf, "/portal/preview?customer=demo", text=TEXT)
            assert facts(r.text)["Encoding"].startswith("UCS-2")
            assert facts((await post(demo, demo_csrf, text=TEXT)).text)["Encoding"].startswith(
                "GSM-7"
            )
            # An operator: the chosen customer's policy, or the defaults.
            r = await post(ops, ops_csrf, "/portal/preview?customer=acme", text=TEXT)
            assert facts(r.text)["Encoding"].startswith("UCS-2")
            r = await post(ops, ops_csrf, text=TEXT)
            assert facts(r.text)["Encoding"].startswith("GSM-7")
            assert "under the default settings" in r.text


async def test_an_eml_file_is_read_as_the_bridge_reads_mail(tmp_path: Path) -> None:
    mail = EmailMessage(policy=SMTP)
    mail["From"] = "demo@example.com"
    mail["To"] = "+491701234567@eu.rsms.net"
    mail["Subject"] = "Meeting"
    mail.set_content("See you at 3 ‘sharp’.\n\n-- \nDemo User\nExample Ltd\n")
    long = EmailMessage(policy=SMTP)
    long["Subject"] = ""
    long.set_content("x" * 400)
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "admin")
        r = await post(web, csrf, eml=("mail.eml", bytes(mail), "message/rfc822"))
        assert r.status_code == 200, r.text
        assert replaced(r.text) == [("‘", "&#39;"), ("’", "&#39;")]
        assert "Removed by the cleaning rules" in r.text and "Example Ltd" in r.text
        r = await post(web, csrf, eml=("long.eml", bytes(long), "message/rfc822"))
        f = facts(r.text)
        assert f["Encoding"] == "GSM-7, 400 septets" and f["Parts"].startswith("3 ")
        assert len(re.findall(r"<li>Part \d of 3<pre>", r.text)) == 3


async def test_bad_input_gets_a_sentence_and_csrf_is_required(tmp_path: Path) -> None:
    nested = b"Content-Type: text/plain\r\n\r\nhi\r\n"
    for i in range(30):
        nested = (
            f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'.encode()
            + nested
            + f"\r\n--b{i}--\r\n".encode()
        )
    async with portal(tmp_path) as run, run.client() as web:
        csrf = await login(web, "acme-admin")
        for files, status, sentence in (
            ({"text": "   "}, 400, "Paste a text or choose an .eml file"),
            ({"text": "x" * 10_001}, 400, "longer than 10000 characters"),
            ({"eml": ("big.eml", b"x" * 1_048_577, "message/rfc822")}, 400, "larger than 1 MB"),
            (
                {"eml": ("deep.eml", nested, "message/rfc822")},
                400,
                "would refuse this mail (554 5.6.0)",
            ),
        ):
            r = await post(web, csrf, **files)
            assert r.status_code == status and sentence in r.text, (files.keys(), r.text[-500:])
            assert "Traceback" not in r.text
        r = await web.post("/portal/preview", data={"text": TEXT}, files=NO_FILE)
        assert r.status_code == 403 and "did not come from this portal" in r.text
        # The form's own token is the session's.
        assert hidden_fields((await web.get("/portal/preview")).text)["csrf"] == csrf
