"""Pure inbound rules: keywords, STOP detection, routing, the SSRF guard, templates."""

from __future__ import annotations

import pytest
from jinja2.exceptions import SecurityError

from bridge.inbound.choice import NumberRow, choose
from bridge.inbound.config import NumbersError, Sms2MailAction, StopAction, parse_numbers
from bridge.inbound.keywords import DEFAULT_STOP_KEYWORDS, first_word, whole_message_keyword
from bridge.notices.customer_templates import Templates
from bridge.notices.render import DEFAULT_TEMPLATES
from bridge.push.body import sign, verify
from bridge.push.guard import PushBlocked, check_address, parse_target, vet


@pytest.mark.parametrize("text", ["STOP", "Stop.", " stop ", "stop!", "Arrêt", "ARRET", "stopp"])
def test_stop_alone_opts_out(text: str) -> None:
    assert whole_message_keyword(text, DEFAULT_STOP_KEYWORDS)


@pytest.mark.parametrize(
    "text", ["please stop calling me", "STOP it now", "", "stopper", "nonstop"]
)
def test_stop_inside_a_sentence_does_not(text: str) -> None:
    assert whole_message_keyword(text, DEFAULT_STOP_KEYWORDS) is None


def test_first_word_is_case_and_accent_insensitive() -> None:
    assert first_word("  Ínfo, please") == "info"
    assert first_word("") == ""


def _row(
    id_: int,
    number: str,
    customer: int,
    sharing: str,
    keywords: str = "",
    takes_unmatched: bool = False,
) -> NumberRow:
    spec = parse_numbers(
        f"""
[[number]]
number = "{number}"
customer = "c{customer}"
sharing = "{sharing}"
takes_unmatched = {str(takes_unmatched).lower()}
{keywords}
"""
    ).number[0]
    return NumberRow(
        id_, spec.number, customer, sharing, (), spec.actions, spec.keyword, spec.takes_unmatched
    )


KW = """
[[number.keyword]]
keyword = "PIZZA"
aliases = ["PIZZEN"]
actions = [{type = "stop"}]
"""


def test_routing_dedicated_keyword_dynamic_prefix_and_unconfigured() -> None:
    dedicated = _row(1, "+4915550000001", 1, "dedicated")
    assert choose((dedicated,), "+4915550000001", "hi", None).customer_id == 1
    shared_a = _row(2, "12345", 2, "keyword", KW)
    shared_b = _row(3, "12345", 3, "dynamic")
    by_kw = choose((shared_a, shared_b), "12345", "pizzen please", None)
    assert (by_kw.customer_id, by_kw.keyword, by_kw.actions) == (2, "PIZZA", (StopAction(),))
    assert choose((shared_a, shared_b), "12345", "hello", 3).customer_id == 3
    prefix = _row(4, "+49155500", 4, "prefix")
    assert choose((prefix,), "+4915550012", "x", None).customer_id == 4
    nothing = choose((), "+4900000", "x", 7)
    assert nothing.row is None and nothing.customer_id == 7
    assert nothing.actions == (Sms2MailAction(),)


def test_shared_number_unmatched_goes_to_its_own_fallback_never_the_first_customer() -> None:
    shared_a = _row(2, "12345", 2, "keyword", KW)
    shared_b = _row(3, "12345", 3, "dynamic")
    nobody = choose((shared_a, shared_b), "12345", "hello", None)
    assert nobody.unmatched and nobody.row is None and nobody.customer_id is None
    assert nobody.actions == (Sms2MailAction(mode="static"),)  # -> [inbound] postmaster
    stranger = choose((shared_a, shared_b), "12345", "hello", 99)  # assigned elsewhere
    assert stranger.unmatched and stranger.customer_id is None
    owner = _row(4, "12345", 4, "dynamic", takes_unmatched=True)
    taken = choose((shared_a, shared_b, owner), "12345", "hello", None)
    assert (taken.unmatched, taken.customer_id, taken.row) == (True, 4, owner)
    assert not choose((shared_a, shared_b, owner), "12345", "pizza", None).unmatched
    assert choose((shared_a, shared_b, owner), "12345", "hi", 3).customer_id == 3
    dedicated = _row(5, "+4915550000001", 5, "dedicated")
    assert not choose((dedicated,), "+4915550000001", "hi", None).unmatched


def test_numbers_are_compared_in_one_spelling() -> None:
    row = _row(1, "004915550000001", 1, "dedicated")  # stored as +4915550000001
    assert row.number == "+4915550000001"
    bare = NumberRow(2, "4915550000001", 2, "dedicated", (), (), ())  # an older stored row
    assert choose((row,), "+4915550000001", "hi", None).customer_id == 1
    assert choose((bare,), "+4915550000001", "hi", None).customer_id == 2
    prefix = NumberRow(3, "4915550", 3, "prefix", (), (), ())
    assert choose((prefix,), "+4915550000099", "hi", None).customer_id == 3
    assert choose((prefix,), "+4915560000099", "hi", None).row is None


def test_numbers_file_is_validated() -> None:
    with pytest.raises(NumbersError, match="number"):
        parse_numbers('[[number]]\nnumber = "abc"\ncustomer = "x"\n')
    with pytest.raises(NumbersError, match="keyword"):
        parse_numbers('[[number]]\nnumber = "12345"\ncustomer = "x"\nsharing = "keyword"\n')
    with pytest.raises(NumbersError, match="type"):
        parse_numbers('[[number]]\nnumber = "12345"\ncustomer = "x"\nactions = [{type = "x"}]\n')
    with pytest.raises(NumbersError, match="internationally"):
        parse_numbers('[[number]]\nnumber = "015550000001"\ncustomer = "x"\n')
    with pytest.raises(NumbersError, match="shared numbers"):
        parse_numbers('[[number]]\nnumber = "12345"\ncustomer = "x"\ntakes_unmatched = true\n')
    two = '[[number]]\nnumber = "12345"\ncustomer = "{}"\nsharing = "dynamic"\n'
    two += "takes_unmatched = true\n"
    with pytest.raises(NumbersError, match="one owner"):
        parse_numbers(two.format("x") + two.format("y"))


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "::1", "169.254.169.254", "10.1.2.3", "100.64.0.1", "::ffff:8.8.8.8"]
)
def test_non_public_addresses_are_refused(address: str) -> None:
    with pytest.raises(PushBlocked):
        check_address(address)


def test_public_address_passes() -> None:
    check_address("8.8.8.8")


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/x",
        "https://2130706433/",
        "https://0x7f.1/",
        "https://017700000001/",
        "https://user:pw@example.com/",
        "ftp://example.com/",
    ],
)
def test_odd_urls_are_refused(url: str) -> None:
    with pytest.raises(PushBlocked):
        parse_target(url, allow_http=False)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/",
        "https://[::1]/",
        "https://169.254.169.254/latest/meta-data/",
        "https://localhost/",
        "https://192.168.1.1:8443/",
        "https://metadata.google.internal/",
    ],
)
async def test_ssrf_targets_are_refused_before_connecting(url: str) -> None:
    with pytest.raises(PushBlocked):
        await vet(url)


async def test_allowed_host_is_exempt() -> None:
    vetted = await vet("http://127.0.0.1:8080/hook", allow_hosts=("127.0.0.1",), allow_http=True)
    assert (vetted.address, vetted.port, vetted.path) == ("127.0.0.1", 8080, "/hook")


def test_signature_round_trip_and_staleness() -> None:
    header = sign("k", 1000, b"body")
    assert verify("k", header, b"body", 1000)
    assert not verify("k", header, b"body!", 1000)
    assert not verify("k", header, b"body", 5000)


def test_templates_escape_sms_text_and_sandbox_customer_templates(tmp_path: object) -> None:
    from pathlib import Path

    root = Path(str(tmp_path))
    (root / "acme").mkdir()
    (root / "acme" / "autoreply.txt").write_text("{{ ''.__class__.__mro__ }}")
    (root / "acme" / "sms2mail.subject").write_text("ACME: {{ source }}")
    templates = Templates(DEFAULT_TEMPLATES, root)
    html = templates.render("sms2mail.html", _ctx("<script>x</script>"), "acme")
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert templates.render("sms2mail.subject", _ctx("x"), "acme") == "ACME: +49170"
    with pytest.raises(SecurityError):
        templates.render("autoreply.txt", {}, "acme")
    assert templates.render("sms2mail.subject", _ctx("x"), "../etc").startswith("SMS from")


def _ctx(text: str) -> dict[str, object]:
    return {
        "source": "+49170",
        "destination": "+4915550000001",
        "text": text,
        "received_at": "now",
        "order_id": "",
        "original_text": "",
        "original_subject": "",
        "others": [],
        "routed_by": "dynamic",
        "keyword": "",
    }
