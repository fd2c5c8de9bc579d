"""Fixtures of the attack suite."""

from __future__ import annotations

import pytest
import trustme


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()
