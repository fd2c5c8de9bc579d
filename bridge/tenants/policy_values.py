"""Validation of single setting values: each setting's rule, and text → value for the CLI.

Pure code (no database, no sockets). `check_value(name, value)` returns the value
normalised (tuples for lists, upper-case country codes, seconds as float, send_at as
an ISO UTC string) or raises `PolicyError` with a sentence saying what is expected.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bridge.errors import InputError
from bridge.mail_address import MailAddressError, check_mail_address
from bridge.text.controls import control_in

CLEANING_RULES = (
    "quotes",
    "quoted_lines",
    "signature",
    "mobile_signature",
    "disclaimers",
    "sign_off",
    "whitespace",
    "collapse_spaces",
)
NOTIFY_CHANNELS = ("html", "dsn", "push")
# What a mail may override (headers / subject tokens), if the customer allows it.
OVERRIDABLE = (
    "sender_id",
    "priority",
    "validity",
    "notify",
    "cost_centre",
    "max_parts",
    "send_at",
    "flash",
)
CHOICES: dict[str, tuple[str, ...]] = {
    "notify": ("none", "failures", "all"),
    "encoding": ("auto", "gsm7", "ucs2"),
    "replacement": ("typographic", "ucs2", "smart", "simple", "reject"),
    "overflow": ("truncate", "reject"),
    "subject_policy": ("body", "subject", "subject_body"),
    "priority": ("normal", "express"),
}
TEXT_LISTS = ("cleaning", "end_markers", "strip_strings", "report_recipients")
_ALNUM_SENDER = re.compile(r"[A-Za-z0-9]{1,11}")
_NUMERIC_SENDER = re.compile(r"\+?[0-9]{1,15}")
_QUIET = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)", re.IGNORECASE)
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_VALIDITY = 30 * 86400.0  # no SMSC keeps an SMS longer; and dates stay computable


class PolicyError(InputError, ValueError):
    """A stored or given setting has an invalid value; the message says which and why."""


def sender_id_kind(value: str) -> str:
    """ "alphanumeric", "short_code" (≤ 8 digits) or "international" (a number)."""
    if value.isdigit() and len(value) <= 8:
        return "short_code"
    if _NUMERIC_SENDER.fullmatch(value):
        return "international"
    return "alphanumeric"


def check_sender_id(value: Any) -> str:
    if not isinstance(value, str):
        raise PolicyError(f"sender_id: expected text, got {value!r}")
    if _NUMERIC_SENDER.fullmatch(value):
        return value
    if _ALNUM_SENDER.fullmatch(value) and any(c.isalpha() for c in value):
        return value
    raise PolicyError(
        f"sender_id: {value!r} is not a valid sender ID; use up to 11 letters and digits "
        "with at least one letter (no spaces or special characters), a short code, or a "
        "number of up to 15 digits"
    )


def parse_duration(value: Any) -> float:
    """Seconds from a number or text like "3600", "90m", "2h", "1d"; PolicyError if not."""
    if isinstance(value, bool):
        raise PolicyError(f"validity: expected seconds or e.g. '2h', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(str(value).strip())
        if not match:
            raise PolicyError(
                f"validity: expected seconds or e.g. '30m', '2h', '1d', got {value!r}"
            )
        seconds = float(match[1]) * _UNIT[match[2].lower()]
    if seconds <= 0:
        raise PolicyError(f"validity: expected seconds > 0, got {value!r}")
    if not seconds <= MAX_VALIDITY:  # also NaN
        raise PolicyError(f"validity: at most 30 days ({MAX_VALIDITY:.0f} s), got {value!r}")
    return seconds


def parse_send_at(value: Any, zone: str = "UTC") -> str:
    """An ISO UTC string from an ISO date-time; a naive one is taken in time zone `zone`."""
    if value in ("", None):
        return ""
    if isinstance(value, datetime):
        when = value
    else:
        try:
            when = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise PolicyError(
                f"send_at: expected a date and time like '2026-12-01 09:00', got {value!r}"
            ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=ZoneInfo(check_timezone(zone)))
    try:
        return when.astimezone(UTC).isoformat()
    except OverflowError:  # e.g. 9999-12-31 23:59 west of UTC
        raise PolicyError(f"send_at: not a usable date, got {value!r}") from None


def check_timezone(value: Any) -> str:
    try:
        ZoneInfo(str(value))
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(
            f"timezone: expected an IANA zone like 'Europe/Berlin', got {value!r}"
        ) from None
    return str(value)


def quiet_window(value: str) -> tuple[int, int] | None:
    """("HH:MM-HH:MM") → (start, end) in minutes after midnight; "" → None."""
    if not value:
        return None
    match = _QUIET.fullmatch(value)
    if not match:
        raise PolicyError(f"quiet_hours: expected 'HH:MM-HH:MM' like '21:00-08:00', got {value!r}")
    start = int(match[1]) * 60 + int(match[2])
    end = int(match[3]) * 60 + int(match[4])
    if start == end:
        raise PolicyError(f"quiet_hours: start and end are the same ({value!r})")
    return start, end


def _text_list(name: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise PolicyError(f"{name}: expected a list of strings, got {value!r}")
    for item in value:
        _no_controls(name, item, breaks=name in _MULTI_LINE)
    return tuple(value)


# Text settings that may hold a line break or tab (they separate or match body text).
_MULTI_LINE = frozenset({"subject_separator", "end_markers", "strip_strings"})


def _no_controls(name: str, value: str, *, breaks: bool = False) -> None:
    """PolicyError naming the first control character of `value` (a tab or line break is
    allowed with `breaks`): none can be shown, and PostgreSQL cannot store a NUL."""
    found = control_in([(name, value)], allow_breaks=breaks)
    if found is not None:
        raise PolicyError(found.sentence())


def _subset(name: str, value: Any, known: tuple[str, ...]) -> tuple[str, ...]:
    items = _text_list(name, value)
    unknown = [v for v in items if v not in known]
    if unknown:
        raise PolicyError(f"{name}: unknown values {unknown}; known: {', '.join(known)}")
    return items


def _count(name: str, value: Any, low: int, high: int) -> int:
    digits = value.strip() if isinstance(value, str) else ""
    if digits.isascii() and digits.isdigit() and len(digits) <= 18:
        value = int(digits)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PolicyError(f"{name}: expected an integer from {low} to {high}, got {value!r}")
    return value


def _flag(name: str, value: Any) -> bool:
    if isinstance(value, str) and value.lower() in (
        "true",
        "yes",
        "on",
        "1",
        "false",
        "no",
        "off",
        "0",
    ):
        return value.lower() in ("true", "yes", "on", "1")
    if not isinstance(value, bool):
        raise PolicyError(f"{name}: expected true or false, got {value!r}")
    return value


def _country(value: Any, name: str = "default_country") -> str:
    if not isinstance(value, str) or len(value) != 2 or not value.isalpha():
        raise PolicyError(f"{name}: expected a 2-letter ISO code, got {value!r}")
    return value.upper()


def check_value(name: str, value: Any) -> Any:
    """Validate one setting value (known name) and return it normalised."""
    if name in CHOICES:
        if value not in CHOICES[name]:
            raise PolicyError(f"{name}: expected one of {', '.join(CHOICES[name])}, got {value!r}")
        return value
    if name == "cleaning":
        return _subset(name, value, CLEANING_RULES)
    if name == "notify_channel":
        channels = _subset(name, value, NOTIFY_CHANNELS)
        if not channels:
            raise PolicyError("notify_channel: expected at least one of html, dsn, push")
        return channels
    if name == "mail_overrides":
        return _subset(name, value, OVERRIDABLE)
    if name == "report_recipients":
        return tuple(_mail_address(name, v) for v in _text_list(name, value))
    if name in TEXT_LISTS:
        return _text_list(name, value)
    if name in ("allowed_countries", "denied_countries"):
        return tuple(_country(c, name) for c in _text_list(name, value))
    if name == "sender_id":
        return check_sender_id(value)
    if name == "max_parts":
        return _count(name, value, 1, 255)
    if name in ("rate_per_minute", "rate_per_day"):
        return _count(name, value, 0, 10_000_000)
    if name == "validity":
        return parse_duration(value)
    if name == "default_country":
        return _country(value)
    if name == "flash":
        return _flag(name, value)
    if name == "send_at":
        return parse_send_at(value) if value else ""
    if name == "timezone":
        return check_timezone(value)
    if not isinstance(value, str):
        raise PolicyError(f"{name}: expected text, got {value!r}")
    _no_controls(name, value, breaks=name in _MULTI_LINE)
    if name == "quiet_hours":
        quiet_window(value)
    if name == "notify_address" and value:
        return _mail_address(name, value)
    if name == "price_per_part" and value:
        return check_price(value)
    return value


_PRICE = re.compile(r"(\d{1,9}(?:\.\d{1,6})?)\s+([A-Z]{3})")


def check_price(value: str) -> str:
    """A price per SMS part: an amount and an ISO 4217 currency code, e.g. "0.075 EUR"."""
    m = _PRICE.fullmatch(value.strip())
    if m is None:
        raise PolicyError(
            f"price_per_part: {value!r} is not a price; write the amount per SMS part and "
            'the currency code, e.g. "0.075 EUR" (up to 6 decimals), or "" for none'
        )
    return f"{m[1]} {m[2]}"


def _mail_address(name: str, value: str) -> str:
    try:
        return check_mail_address(value)
    except MailAddressError as exc:
        raise PolicyError(f"{name}: {exc}") from None


def parse_text(name: str, text: str) -> Any:
    """A value typed on the command line → the value to check (lists comma-separated)."""
    text = text.strip()
    counts = ("max_parts", "rate_per_minute", "rate_per_day")
    if name in counts and text.isascii() and text.isdigit() and len(text) <= 18:
        return int(text)  # other text is refused by the check, with the reason
    if name in (
        "cleaning",
        "notify_channel",
        "mail_overrides",
        "allowed_countries",
        "denied_countries",
        *TEXT_LISTS,
    ):
        return [v.strip() for v in text.split(",") if v.strip()]
    if name == "subject_separator":
        try:  # backslash escapes such as \n; other characters stay as they are
            return text.encode("latin-1", "backslashreplace").decode("unicode_escape")
        except UnicodeDecodeError:
            raise PolicyError(
                f"subject_separator: {text!r} has a broken escape; write e.g. '\\n' or ' - '"
            ) from None
    return text
