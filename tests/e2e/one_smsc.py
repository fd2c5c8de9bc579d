"""The whole bridge bound to one SMSC we did not write: its settings, and its database read."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from bridge.settings import Settings, load_settings


def settings_for(
    tmp_path: Path,
    port: int,
    *,
    name: str = "node",
    system_id: str = "bridge",
    password: str = "pw",
    **smsc: object,
) -> Settings:
    """SQLite, a Maildir, the demo customer, every number routed to the SMSC `name` on
    `port`; `smsc`: more settings of that SMSC (`text_receipts = true`, ...)."""
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in smsc.items())
    text = f"""
database_url = "sqlite:///{tmp_path / "bridge.db"}"
demo = true
[smtp]
port = 0
[mailer]
mode = "maildir"
maildir = "{tmp_path / "maildir"}"
poll_interval = 0.2
[dispatch]
poll_interval = 0.1
[inbound]
poll_interval = 0.1
[[smsc]]
name = {json.dumps(name)}
port = {port}
system_id = {json.dumps(system_id)}
password = {json.dumps(password)}
reconnect_max = 1.0
stats_interval = 0
{extra}
[[routes]]
prefix = ""
transports = [{json.dumps(name)}]
"""
    path = tmp_path / "bridge.toml"
    path.write_text(text, encoding="utf-8")
    return load_settings(path, environ={})


def rows(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(tmp_path / "bridge.db") as conn:
        return conn.execute(sql).fetchall()
