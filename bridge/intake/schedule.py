"""When an order may go out: `send_at`, quiet hours in the recipient's local time, validity.

Pure code. The recipient's time zone comes from the number's country (phonenumbers'
timezone data); express orders ignore quiet hours; the validity period counts from
acceptance for held orders (so a long hold can expire them) and from `send_at` for
scheduled ones.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as number_timezone

from bridge.tenants.policy import Policy
from bridge.tenants.policy_values import quiet_window


def recipient_zone(msisdn: str, fallback: str = "UTC") -> ZoneInfo:
    """The (first) time zone of the number's region, else `fallback`."""
    try:
        zones = number_timezone.time_zones_for_number(phonenumbers.parse(msisdn))
    except phonenumbers.NumberParseException:
        zones = ()
    for name in zones:
        if name != "Etc/Unknown":
            try:
                return ZoneInfo(name)
            except (KeyError, ValueError):
                continue
    return ZoneInfo(fallback)


def after_quiet_hours(window: str, zone: ZoneInfo, at: datetime) -> datetime:
    """`at`, or the end of the quiet window in `zone` if `at` falls inside it."""
    bounds = quiet_window(window)
    if bounds is None:
        return at
    start, end = bounds
    local = at.astimezone(zone)
    minute = local.hour * 60 + local.minute
    quiet = (start <= minute or minute < end) if start > end else (start <= minute < end)
    if not quiet:
        return at
    opens = local.replace(hour=end // 60, minute=end % 60, second=0, microsecond=0)
    if opens <= local:
        opens = (local + timedelta(days=1)).replace(hour=end // 60, minute=end % 60)
        # rebuild in the zone so a DST change between the days is respected
        opens = datetime(opens.year, opens.month, opens.day, end // 60, end % 60, tzinfo=zone)
    return opens.astimezone(at.tzinfo)


def schedule(policy: Policy, msisdn: str, now: datetime) -> tuple[datetime, datetime]:
    """(next_attempt_at, expires_at) of a new order to `msisdn` accepted at `now`."""
    first = now
    starts = now
    if policy.send_at:
        wanted = datetime.fromisoformat(policy.send_at)
        if wanted > now:
            first = starts = wanted
    if policy.quiet_hours and policy.priority != "express":
        zone = recipient_zone(msisdn, policy.timezone)
        first = after_quiet_hours(policy.quiet_hours, zone, first)
    return first, starts + timedelta(seconds=policy.validity)
