"""The processors `bridge.db.prepared` uses for the tables' times (`UTCDateTime`) give
what SQLAlchemy's give, value for value: the same text stored on SQLite (compared as text
by every `<` and `ORDER BY` on a time there), the same object sent to PostgreSQL, the same
time read, and the same error for a time without a zone."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Dialect, Integer, String
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

from bridge.db.prepared import bind_processor, result_processor

DIALECTS: dict[str, Dialect] = {
    "sqlite": sqlite.dialect(),
    "postgresql": postgresql.psycopg.dialect(),  # type: ignore[no-untyped-call]
}


def _times() -> list[datetime]:
    rng = random.Random(7)
    edges = [
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(999, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 12, 7, 21, 0, 0, 0, tzinfo=UTC),  # no microseconds: still written
        datetime(2026, 12, 7, 21, 0, 0, 1, tzinfo=UTC),
        datetime(2026, 3, 29, 1, 30, tzinfo=ZoneInfo("Europe/Berlin")),
        datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Berlin")),
        datetime(2026, 12, 7, 21, 0, tzinfo=timezone(timedelta(hours=5, minutes=45))),
        datetime(2026, 12, 7, 21, 0, tzinfo=ZoneInfo("UTC")),  # UTC, another object
        datetime.now(UTC),
    ]
    spread = [
        datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=rng.randrange(2**62 // 1000))
        for _ in range(500)
    ]
    return edges + spread


class _Subclass(datetime):
    pass


@pytest.mark.parametrize("name", list(DIALECTS))
def test_a_time_is_sent_as_sqlalchemy_sends_it(name: str) -> None:
    dialect = DIALECTS[name]
    ours = bind_processor(UTCDateTime(), dialect)
    theirs = UTCDateTime()._cached_bind_processor(dialect)
    assert ours is not None and theirs is not None and ours is not theirs
    for value in [*_times(), None, _Subclass(2026, 12, 7, 21, 0, 0, 5, tzinfo=UTC)]:
        sent, expected = ours(value), theirs(value)
        assert sent == expected and type(sent) is type(expected), value
        if isinstance(expected, datetime):
            assert sent.tzinfo is expected.tzinfo  # the same zone object, not only equal


@pytest.mark.parametrize("name", list(DIALECTS))
def test_a_time_without_a_zone_is_refused_as_sqlalchemy_refuses_it(name: str) -> None:
    dialect = DIALECTS[name]
    naive = datetime(2026, 12, 7, 21, 0)
    with pytest.raises(ValueError, match="timezone") as theirs:
        UTCDateTime()._cached_bind_processor(dialect)(naive)  # type: ignore[misc]
    with pytest.raises(ValueError, match="timezone") as ours:
        bind_processor(UTCDateTime(), dialect)(naive)  # type: ignore[misc]
    assert str(ours.value) == str(theirs.value)


def test_a_stored_time_is_read_as_sqlalchemy_reads_it() -> None:
    dialect = DIALECTS["sqlite"]
    write = UTCDateTime()._cached_bind_processor(dialect)
    ours = result_processor(UTCDateTime(), dialect)
    theirs = UTCDateTime()._cached_result_processor(dialect, None)
    assert write is not None and ours is not None and theirs is not None
    stored: list[Any] = [write(t) for t in _times()]
    # texts another writer may have left: without microseconds, with a zone, a "T"
    stored += ["2026-12-07 21:00:00", "2026-12-07T21:00:00.5", "2026-12-07 22:00:00+01:00", None]
    for text in stored:
        read, expected = ours(text), theirs(text)
        assert read == expected, text
        if expected is not None:
            assert read.tzinfo is expected.tzinfo is UTC
            assert read.utcoffset() == timedelta(0)


@pytest.mark.parametrize("name", list(DIALECTS))
def test_other_types_keep_sqlalchemys_processors(name: str) -> None:
    dialect = DIALECTS[name]
    for type_ in (Integer(), String(), AutoString()):
        assert bind_processor(type_, dialect) is type_._cached_bind_processor(dialect)
        assert result_processor(type_, dialect) is type_._cached_result_processor(dialect, None)
