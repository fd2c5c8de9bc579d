"""numbers in one spelling: stored MSISDNs and our numbers as E.164

Incoming numbers are now read with each SMSC's TON rules into E.164. Rows written
before kept what the SMSC sent (`491701234567`, `00491701234567`, `01701234567`), so a
STOP stored that way was never matched against `+491701234567`. This rewrites those
spellings in the stop list, reply assignments, keyword-list members, auto-reply log,
inbound messages, waiting MO parts and configured inbound numbers. National spellings
are read with the row's customer's `default_country`, else `[defaults] default_country`
(handed over by the bridge as the config attribute "default_country"). Short codes,
names and anything that is not a valid number stay as they are; when a rewritten row
collides with one already in E.164, the duplicate is removed (the stop list and lists
keep their entry). Data only; the downgrade leaves the rows in E.164.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

import json
import logging
from collections.abc import Sequence

import phonenumbers
import sqlalchemy as sa
from alembic import context, op
from phonenumbers import NumberParseException, PhoneNumberType

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")
SHORT_CODE_MAX_DIGITS = 8
_MOBILE = (PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE)


def _parse(text: str, country: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, country)
    except NumberParseException:
        return None


def e164(value: str, country: str) -> str | None:
    """The E.164 spelling of a stored number, or None to keep it as it is."""
    s = (value or "").strip()
    if not s or s.startswith("+") or not (s.isascii() and s.isdigit()):
        return None
    if s.startswith("00"):
        n = _parse("+" + s[2:], None)
        return "+" + s[2:] if n is not None and phonenumbers.is_possible_number(n) else None
    if s.startswith("0") or len(s) <= SHORT_CODE_MAX_DIGITS:
        n = _parse(s, country)
        if n is None or not phonenumbers.is_valid_number(n):
            return None
        if not s.startswith("0") and phonenumbers.number_type(n) not in _MOBILE:
            return None  # a short code, not a national mobile number
        return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
    n = _parse("+" + s, None)
    if n is not None and phonenumbers.is_possible_number(n):
        return "+" + s
    n = _parse(s, country)
    if n is not None and phonenumbers.is_valid_number(n):
        return phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
    return None


def _countries(conn: sa.Connection, default: str) -> dict[int | None, str]:
    out: dict[int | None, str] = {None: default, 0: default}
    for cid, settings in conn.execute(sa.text("SELECT id, settings FROM customer")):
        if isinstance(settings, str):
            settings = json.loads(settings or "{}")
        country = (settings or {}).get("default_country") if isinstance(settings, dict) else None
        out[cid] = str(country).upper() if country else default
    return out


def _rewrite(
    conn: sa.Connection,
    table: str,
    key: Sequence[str],
    columns: Sequence[str],
    customer_sql: str,
    unique: Sequence[str],
    countries: dict[int | None, str],
    on_conflict: str,
) -> int:
    """Rewrite `columns` of every row that has a non-E.164 number; returns rows changed.

    `unique` (may be empty) is the set of columns that must stay unique together;
    `on_conflict` is "delete" (drop the old-spelling row), "keep" (leave it, warn) or
    the name of a time column (the newer of the two rows stays, in the new spelling).
    """
    where = " OR ".join(f"t.{c} NOT LIKE '+%'" for c in columns)
    q = f'SELECT t.*, {customer_sql} AS cust FROM "{table}" t WHERE {where}'
    changed = 0
    for row in conn.execute(sa.text(q)).mappings().all():
        country = countries.get(row["cust"], countries[None])
        new = {c: e164(row[c], country) for c in columns}
        new = {c: v for c, v in new.items() if v is not None}
        if not new:
            continue
        match = " AND ".join(f"{k} = :k_{k}" for k in key)
        params = {f"k_{k}": row[k] for k in key}
        if unique:
            after = {c: new.get(c, row[c]) for c in unique}
            taken = " AND ".join(f"{c} = :u_{c}" for c in after)
            clash = (
                conn.execute(
                    sa.text(f'SELECT * FROM "{table}" WHERE {taken} LIMIT 1'),
                    {f"u_{c}": v for c, v in after.items()},
                )
                .mappings()
                .first()
            )
            if clash is not None:
                if on_conflict == "keep":
                    log.warning("%s %s: %s already exists; left as it is", table, params, after)
                    continue
                if on_conflict == "delete" or clash[on_conflict] >= row[on_conflict]:
                    conn.execute(sa.text(f'DELETE FROM "{table}" WHERE {match}'), params)
                    changed += 1
                    continue
                conn.execute(  # the old-spelling row is newer: it replaces the other
                    sa.text(f'DELETE FROM "{table}" WHERE {taken}'),
                    {f"u_{c}": v for c, v in after.items()},
                )
        sets = ", ".join(f"{c} = :n_{c}" for c in new)
        conn.execute(
            sa.text(f'UPDATE "{table}" SET {sets} WHERE {match}'),
            {**params, **{f"n_{c}": v for c, v in new.items()}},
        )
        changed += 1
    return changed


def upgrade() -> None:
    conn = op.get_bind()
    default = str(context.config.attributes.get("default_country") or "DE").upper()
    countries = _countries(conn, default)
    plan: list[tuple[str, list[str], list[str], str, list[str], str]] = [
        (
            "stop_entry",
            ["id"],
            ["msisdn", "service"],
            "t.customer_id",
            ["customer_id", "msisdn", "service"],
            "delete",
        ),
        ("reply_assignment", ["id"], ["msisdn", "sender_id"], "t.customer_id", [], "delete"),
        (
            "list_member",
            ["id"],
            ["msisdn"],
            "(SELECT l.customer_id FROM inbound_list l WHERE l.id = t.list_id)",
            ["list_id", "msisdn"],
            "changed_at",
        ),
        (
            "autoreply_log",
            ["number", "msisdn"],
            ["number", "msisdn"],
            "NULL",
            ["number", "msisdn"],
            "last_at",
        ),
        ("inbound", ["id"], ["source", "destination"], "NULL", [], "delete"),
        (
            "mo_part",
            ["id"],
            ["source", "destination"],
            "NULL",
            ["transport", "source", "destination", "ref", "total", "seq"],
            "delete",
        ),
        ("inbound_number", ["id"], ["number"], "t.customer_id", ["number", "customer_id"], "keep"),
    ]
    for table, key, columns, customer_sql, unique, on_conflict in plan:
        n = _rewrite(conn, table, key, columns, customer_sql, unique, countries, on_conflict)
        if n:
            log.info("%s: %d row(s) rewritten to E.164", table, n)


def downgrade() -> None:
    pass  # the E.164 spelling is valid for the older code too
