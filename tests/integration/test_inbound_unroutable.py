"""An inbound SMS nobody can take is kept as unroutable; its log line gives the reason once."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import Engine, select
from sqlmodel import col

from bridge.db.clock import utcnow
from bridge.db.store import Store
from bridge.inbound.service import InboundService
from bridge.inbound.settings import InboundSettings
from bridge.inbound.store import insert_inbound
from bridge.inbound.tables import Inbound
from bridge.notices.customer_templates import Templates
from bridge.notices.render import DEFAULT_TEMPLATES
from bridge.push.settings import PushSettings
from bridge.values import InboundSms


async def test_unroutable_reason_is_stated_once(
    engine: Engine, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    sms = InboundSms("smsc", source="+491709999999", destination="ACME", text="?", encoding="gsm7")
    await store.call(insert_inbound, sms, utcnow())
    service = InboundService(
        InboundSettings(), PushSettings(), store, Templates(DEFAULT_TEMPLATES), "eu.rsms.net"
    )
    with caplog.at_level(logging.WARNING, logger="bridge.inbound"):
        assert await service.step() == 1
    with engine.connect() as conn:
        status, error = conn.execute(select(col(Inbound.status), col(Inbound.error))).one()
    assert status == "unroutable"
    assert error and error.count(error.split(";")[0]) == 1, error
    lines = [r.getMessage() for r in caplog.records if "unroutable" in r.getMessage()]
    assert len(lines) == 1
    assert lines[0].count(error) == 1 and lines[0].count("no postmaster") == 1, lines[0]
