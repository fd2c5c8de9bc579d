"""`database_url`'s `pool_mode`: how a pooler in front of PostgreSQL hands out server
connections (session: as PostgreSQL itself; transaction: shared between transactions)."""

from __future__ import annotations

import pytest

from bridge.db.engine import PoolMode, open_engine, parse_url, pool_mode
from bridge.errors import ConfigError


@pytest.mark.parametrize(
    ("url", "mode"),
    [
        ("postgresql://u@h/db", PoolMode.SESSION),
        ("postgresql://u@h/db?pool_mode=session", PoolMode.SESSION),
        ("postgresql://u@h/db?pool_mode=transaction", PoolMode.TRANSACTION),
        ("postgresql://u@h/db?sslmode=require&pool_mode=Transaction", PoolMode.TRANSACTION),
        ("postgresql://u@/db?host=a:6432&host=b:6432&pool_mode=transaction", PoolMode.TRANSACTION),
    ],
)
def test_the_pool_mode_a_url_declares(url: str, mode: PoolMode) -> None:
    assert pool_mode(parse_url(url)) is mode


def test_statement_pooling_is_refused_with_what_to_set() -> None:
    with pytest.raises(ConfigError, match=r"pool_mode=statement cannot work.*transaction"):
        pool_mode(parse_url("postgresql://u@h/db?pool_mode=statement"))


def test_a_misspelt_pool_mode_is_refused_not_ignored() -> None:
    with pytest.raises(ConfigError, match=r"'transactions' is not a pool mode"):
        open_engine("postgresql://u@h/db?pool_mode=transactions")


def test_the_pool_mode_is_no_libpq_parameter_and_stays_in_the_engines_url() -> None:
    """libpq refuses parameters it does not know: the dialect leaves `pool_mode` out of
    the connection's, and the engine's URL keeps it (an engine opened again from it, as
    the CLI and the tests do, is pooled the same way)."""
    engine = open_engine("postgresql://u@h:6432/db?pool_mode=transaction&sslmode=disable")
    try:
        _, params = engine.dialect.create_connect_args(engine.url)
        assert "pool_mode" not in params and params["sslmode"] == "disable"
        assert engine.url.query["pool_mode"] == "transaction"
        again = open_engine(engine.url.render_as_string(hide_password=False))
        assert getattr(again.dialect, "mailsms_begin", None) is not None
        again.dispose()
    finally:
        engine.dispose()
