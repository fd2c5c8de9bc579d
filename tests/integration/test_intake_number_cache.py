"""Every bridge process keeps phonenumbers' compiled patterns (its pattern cache is on)."""

from __future__ import annotations

from pathlib import Path

import aiosmtplib
import pytest
from phonenumbers import re_util

from bridge.intake.addresses import classify_number
from tests.conftest import make_settings
from tests.helpers import make_mail, running_bridge


async def test_a_started_bridge_has_the_number_pattern_cache_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(re_util, "_COMPILED_PATTERNS", None)  # as in a fresh process
    classify_number.cache_clear()  # (no number classified yet either)
    async with running_bridge(make_settings(tmp_path)) as (_, ep):
        assert re_util._COMPILED_PATTERNS is not None  # type: ignore[attr-defined]
        async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
            errors, _ = await smtp.sendmail(
                "demo@example.com", ["+491701234567@eu.rsms.net"], make_mail()
            )
        assert errors == {}
        assert re_util._COMPILED_PATTERNS  # type: ignore[attr-defined]  # the recipient's number was read through it
