"""The `[inbound]` table: reply window, STOP/START keywords, auto-replies, customer templates."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from bridge.inbound.keywords import DEFAULT_START_KEYWORDS, DEFAULT_STOP_KEYWORDS
from bridge.sections import Seconds, Section


class InboundSettings(Section):
    """Inbound services: SMS2Mail reply window, STOP keywords, answer and MO limits, templates."""

    reply_window: Seconds = 604_800.0
    poll_interval: Seconds = 1.0
    postmaster: str = ""
    stop_keywords: tuple[str, ...] = DEFAULT_STOP_KEYWORDS
    start_keywords: tuple[str, ...] = DEFAULT_START_KEYWORDS
    stop_confirmation: str = (
        "You have opted out and will get no more SMS from this service. Reply START to opt in."
    )
    start_confirmation: str = "You have opted in again. Reply STOP to opt out."
    # at most one STOP/START confirmation per number and sender in this many seconds: the
    # stop list still changes with every STOP and START, only the SMS answer is limited
    confirmation_interval: Seconds = 3600.0
    autoreply_interval: Seconds = 600.0
    # At most `mo_limit` SMS from one sender to one of our numbers within `mo_limit_window`
    # seconds run their actions (0: no limit); the others are kept as `limited` and make no
    # mail, push or SMS, though a STOP or START still changes the stop list. 200 an hour is
    # an SMS every 18 s for an hour on end: more than a person types in a conversation or a
    # device reporting once a minute sends (60), while a phone or an SMSC peer sending in
    # a loop reaches it within minutes.
    mo_limit: Annotated[int, Field(ge=0)] = 200
    mo_limit_window: Seconds = 3600.0
    customer_templates: Path | None = None
    # one render of a customer's template (or an inline auto-reply text): time and size
    template_timeout: Annotated[float, Field(gt=0, le=300)] = 5.0
    template_max_chars: Annotated[int, Field(ge=10_000)] = 5_000_000
    list_check_interval: Seconds = 60.0
