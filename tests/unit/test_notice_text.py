"""Pure helpers of the notices: the subject topic of a conversation, times in a zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bridge.notices.shown_time import shown_time
from bridge.notices.subjects import reply_topic


@pytest.mark.parametrize(
    ("subject", "topic"),
    [
        ("Meeting", "Meeting"),
        ("Re: Meeting", "Meeting"),
        ("Re: SMS from +491701234567: Re: Meeting", "Meeting"),
        ("AW: Re: SMS from +491701234567: Re: Re: SMS from +491701234567: Re: Meeting", "Meeting"),
        ("RE[2]: Fwd: WG: Sv: VS: Antw: Tr: Meeting", "Meeting"),
        ("Re^3:   SMS from ACME:  Order  4711", "Order 4711"),
        ("Reply needed: budget", "Reply needed: budget"),  # a word, not a prefix
        ("SMS from the past", "SMS from the past"),
        ("Re:", ""),
    ],
)
def test_reply_topic(subject: str, topic: str) -> None:
    assert reply_topic(subject) == topic
    assert reply_topic(f"Re: SMS from +4930123: {topic}") == topic  # one round trip more


def test_shown_time_names_the_zone() -> None:
    winter = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    summer = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)
    assert shown_time(winter) == "2026-11-22 10:00:00 UTC"
    assert shown_time(winter, "Europe/Berlin") == "2026-11-22 11:00:00 CET (Europe/Berlin)"
    assert shown_time(summer, "Europe/Berlin") == "2026-07-01 12:00:00 CEST (Europe/Berlin)"
    assert shown_time(winter, "Asia/Kolkata") == "2026-11-22 15:30:00 IST (Asia/Kolkata)"
    assert shown_time(winter.replace(tzinfo=None), "UTC") == "2026-11-22 10:00:00 UTC"
    assert shown_time(winter, "No/Such_Zone") == "2026-11-22 10:00:00 UTC"
    assert shown_time(None, "Europe/Berlin") == ""
