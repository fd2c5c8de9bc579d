"""Pure: turn one directory entry's raw attribute values into a clean `SourceUser`.

Covers the attribute mapping (with the AD and OpenLDAP presets), `objectGUID`
decoding, `proxyAddresses` parsing, E.164 normalisation of mobile numbers (the bridge's
own `normalise_msisdn`, so a number reads the same here as in a recipient address), the
enabled flag (AD `userAccountControl` bit 2, an attribute, or a filter) and the
validation of sender IDs and cost centres. Invalid values are reported as
`Problem`s, never guessed.
"""

from __future__ import annotations

import enum
import re
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from bridge.errors import ConfigError
from bridge.intake.addresses import normalise_msisdn
from bridge.mail_address import MailAddressError, check_mail_address
from bridge.text.controls import one_line
from dirsync.model import Problem, SourceUser

EnabledMode = Literal["uac", "always", "attribute", "filter"]
IdFormat = Literal["guid", "text"]
AliasFormat = Literal["proxy", "plain"]

UAC_ACCOUNTDISABLE = 0x2
# AD's expiry time of an account (Windows FILETIME); read by default with enabled = "uac"
ACCOUNT_EXPIRES = "accountExpires"
FILETIME_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)
FILETIME_NEVER = frozenset({0, 0x7FFFFFFFFFFFFFFF})  # AD's two ways to say "never expires"
_DECIMAL = re.compile(r"[0-9]+")
SENDER_ID_RE = re.compile(r"^(?:[A-Za-z0-9 .&_\-]{1,11}|\+?[0-9]{1,15})$")
MAX_COST_CENTRE = 70
COST_CENTRE_PROBLEM = (
    f"cost centre longer than {MAX_COST_CENTRE} characters or with characters that cannot "
    "be shown; left unchanged"
)


def usable_cost_centre(value: str) -> bool:
    return len(value) <= MAX_COST_CENTRE and value.isprintable()


MAX_DISPLAY_NAME = 256


@dataclass(frozen=True, slots=True)
class AttributeMap:
    """Which directory attribute feeds which user field (names are case-insensitive)."""

    id: str
    id_format: IdFormat
    mail: str
    aliases: tuple[str, ...]
    aliases_format: AliasFormat
    mobile: tuple[str, ...]
    display_name: tuple[str, ...]
    sender_id: str | None
    cost_centre: str | None
    member_of: str | None
    enabled: EnabledMode
    enabled_attribute: str | None = None
    disabled_values: tuple[str, ...] = ()
    enabled_filter: str | None = None
    extra: tuple[str, ...] = field(default=())
    # The account's expiry time (FILETIME, AD `accountExpires`): once passed, the user is
    # disabled. `expires_named`: the admin named it, so a schema without it stops the run
    # (the default one is left out there).
    expires_attribute: str | None = None
    expires_named: bool = False

    def attributes(self) -> list[str]:
        """Every attribute a user search must request (operational ones included)."""
        names: list[str] = [self.id, self.mail, *self.aliases, *self.mobile, *self.display_name]
        for optional in (self.sender_id, self.cost_centre, self.member_of):
            if optional:
                names.append(optional)
        if self.enabled in ("uac", "attribute") and self.enabled_attribute:
            names.append(self.enabled_attribute)
        if self.expires_attribute:
            names.append(self.expires_attribute)
        names.extend(self.extra)
        seen: dict[str, str] = {}
        for n in names:
            seen.setdefault(n.lower(), n)
        return list(seen.values())


PRESETS: dict[str, AttributeMap] = {
    "ad": AttributeMap(
        id="objectGUID",
        id_format="guid",
        mail="mail",
        aliases=("proxyAddresses",),
        aliases_format="proxy",
        mobile=("mobile", "otherMobile"),
        display_name=("displayName", "cn"),
        sender_id="extensionAttribute1",
        cost_centre="department",
        member_of="memberOf",
        enabled="uac",
        enabled_attribute="userAccountControl",
        expires_attribute=ACCOUNT_EXPIRES,
    ),
    "openldap": AttributeMap(
        id="entryUUID",
        id_format="text",
        mail="mail",
        aliases=("mail",),
        aliases_format="plain",
        mobile=("mobile",),
        display_name=("displayName", "cn"),
        sender_id=None,
        cost_centre="departmentNumber",
        member_of=None,
        enabled="always",
    ),
}

PRESET_FILTERS: dict[str, str] = {
    "ad": "(&(objectCategory=person)(objectClass=user))",
    "openldap": "(objectClass=inetOrgPerson)",
}
PRESET_GROUP_FILTERS: dict[str, str] = {
    "ad": "(objectClass=group)",
    "openldap": "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))",
}


Canonical = Callable[[str], str | None]


def resolve_names(amap: AttributeMap, preset: AttributeMap, canonical: Canonical) -> AttributeMap:
    """`amap` with every attribute name as the directory's schema spells it.

    `canonical(name)` is the schema's first name for `name` (any alias, any case), or None
    when the schema has no such attribute. The server answers under that name, so a
    mapping written `mobileTelephoneNumber` or `USERACCOUNTCONTROL` still finds its values.
    A configured name the schema does not know is a `ConfigError`; a name that only comes
    from the preset for an optional field (Exchange's `extensionAttribute1` in a directory
    without Exchange) is dropped: the directory has no such values. So is the expiry
    attribute unless the admin named it (`expires_named`): `accountExpires`, read by
    default with `enabled = "uac"`, is unknown to a plain OpenLDAP schema.
    """

    def one(key: str, name: str, optional: bool) -> str | None:
        base, sep, options = name.partition(";")  # options such as ";binary" are kept
        found = canonical(base)
        if found is not None:
            return found + sep + options
        if optional and name in _names(preset, key):
            return None
        from_preset = name in _names(preset, key)
        hint = (
            f"set ldap.preset to the directory's kind, or ldap.mapping.{key} to the attribute "
            "it uses"
            if from_preset
            else "write the name the directory's schema uses, or remove it"
        )
        raise ConfigError(
            f"ldap.mapping.{key}: the directory's schema has no attribute {name!r}; {hint}"
        )

    def some(key: str, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(n for n in (one(key, name, True) for name in names) if n is not None)

    def maybe(key: str, name: str | None) -> str | None:
        return None if name is None else one(key, name, True)

    enabled_attribute = amap.enabled_attribute
    if enabled_attribute is not None and amap.enabled in ("uac", "attribute"):
        enabled_attribute = one("enabled_attribute", enabled_attribute, False)
    expires = amap.expires_attribute
    if expires is not None:
        found = canonical(expires)
        if found is None and amap.expires_named:
            raise ConfigError(
                f"ldap.mapping.expires_attribute: the directory's schema has no attribute "
                f'{expires!r}; write the name the directory\'s schema uses, or "" to read '
                "no expiry time"
            )
        expires = found
    return replace(
        amap,
        id=one("id", amap.id, False) or amap.id,
        mail=one("mail", amap.mail, False) or amap.mail,
        aliases=some("aliases", amap.aliases),
        mobile=some("mobile", amap.mobile),
        display_name=some("display_name", amap.display_name),
        sender_id=maybe("sender_id", amap.sender_id),
        cost_centre=maybe("cost_centre", amap.cost_centre),
        member_of=maybe("member_of", amap.member_of),
        enabled_attribute=enabled_attribute,
        extra=some("extra", amap.extra),
        expires_attribute=expires,
    )


def _names(amap: AttributeMap, key: str) -> tuple[str, ...]:
    value = getattr(amap, key)
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def lower_keys(raw: Mapping[str, Sequence[bytes]]) -> dict[str, Sequence[bytes]]:
    """Attribute names compared case-insensitively, as LDAP does."""
    return {k.lower(): v for k, v in raw.items()}


def texts(attrs: Mapping[str, Sequence[bytes]], name: str) -> list[str]:
    """The non-empty string values of one attribute (UTF-8, surrounding space stripped)."""
    out: list[str] = []
    for v in attrs.get(name.lower(), ()):
        s = v.decode("utf-8", "replace").strip() if isinstance(v, bytes) else str(v).strip()
        if s:
            out.append(s)
    return out


def first_text(attrs: Mapping[str, Sequence[bytes]], names: Sequence[str]) -> str | None:
    for n in names:
        values = texts(attrs, n)
        if values:
            return values[0]
    return None


def decode_id(values: Sequence[bytes], fmt: IdFormat) -> str | None:
    """The stable id in canonical form: a lower-case UUID for `objectGUID`/`entryUUID`."""
    if not values:
        return None
    raw = values[0]
    if fmt == "guid":
        if isinstance(raw, bytes) and len(raw) == 16:
            return str(uuid.UUID(bytes_le=raw))
        text = raw.decode("ascii", "replace") if isinstance(raw, bytes) else str(raw)
        try:
            return str(uuid.UUID(text.strip("{} ")))
        except ValueError:
            return None
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    text = text.strip()
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return text or None


def clean_address(value: str) -> str | None:
    """A lower-cased mail address, or None when it is not valid (`check_mail_address`)."""
    try:
        return check_mail_address(value)
    except MailAddressError:
        return None


def parse_proxy_addresses(values: Sequence[str]) -> tuple[str | None, list[str]]:
    """(primary from `SMTP:`, secondaries from `smtp:`); other types (X500:, SIP:) ignored."""
    primary: str | None = None
    secondary: list[str] = []
    for v in values:
        kind, sep, addr = v.partition(":")
        if not sep or kind.lower() != "smtp":
            continue
        if kind == "SMTP" and primary is None:
            primary = addr
        else:
            secondary.append(addr)
    return primary, secondary


def normalise_mobile(value: str, region: str | None) -> str | None:
    """E.164 (`+4917012345678`) for a mobile number, read as the bridge reads a number in
    a recipient address (`normalise_msisdn`: `491701234567` is international, `0170…`
    national in `region`); None for an invalid number or one no SMS reaches (a landline).
    A `tel:` prefix and any kind of space are allowed. Without a region only international
    numbers count."""
    text = " ".join(value.split())
    if text[:4].lower() == "tel:":
        text = text[4:].strip()
    if region is None:
        if not text.startswith(("+", "00")):
            return None
        region = "ZZ"  # phonenumbers' "unknown region": the number names its country
    return normalise_msisdn(text, region)


def mobile_problem(value: str, outcome: str = "left unchanged") -> str:
    """The problem reported for a mobile value `normalise_mobile` refused."""
    return (
        f"invalid mobile number {value!r} (not a valid number, or not a mobile one; write it "
        f"as +<country code><number>); {outcome}"
    )


def is_enabled(attrs: Mapping[str, Sequence[bytes]], amap: AttributeMap) -> bool | None:
    """The enabled flag for the `uac` / `attribute` / `always` modes (`filter` is the caller's);
    None when `userAccountControl` is missing or not a number (the state is unknown)."""
    if amap.enabled == "uac":
        raw = first_text(attrs, [amap.enabled_attribute or "userAccountControl"])
        if raw is None:
            return None
        try:
            return not int(raw) & UAC_ACCOUNTDISABLE
        except ValueError:
            return None
    if amap.enabled == "attribute" and amap.enabled_attribute:
        values = [v.lower() for v in texts(attrs, amap.enabled_attribute)]
        if not amap.disabled_values:
            return not values  # present means disabled (e.g. pwdAccountLockedTime)
        bad = {d.lower() for d in amap.disabled_values}
        return not any(v in bad for v in values)
    return True


def filetime(value: str) -> datetime | None:
    """The instant a Windows FILETIME (100-ns intervals since 1601-01-01 UTC, as decimal
    text, like AD's `accountExpires`) names; None for "never": 0, 0x7FFFFFFFFFFFFFFF, or
    a time after the year 9999. `ValueError` when `value` is not a whole number >= 0."""
    text = value.strip()
    if not _DECIMAL.fullmatch(text):
        raise ValueError(f"not a FILETIME: {value!r}")
    ticks = int(text)
    if ticks in FILETIME_NEVER:
        return None
    try:
        # rounded up to datetime's microseconds: a time 100 ns after the run's is later
        return FILETIME_EPOCH + timedelta(microseconds=-(-ticks // 10))
    except OverflowError:  # beyond datetime's year 9999: never, in practice
        return None


class ExpiryState(enum.Enum):
    NEVER = "never"  # no expiry time, or one that means "never"
    LATER = "later"  # expires after the run's time
    EXPIRED = "expired"  # at or before the run's time: disabled
    INVALID = "invalid"  # not a FILETIME: the enabled state is unknown


@dataclass(frozen=True, slots=True)
class Expiry:
    state: ExpiryState
    at: datetime | None = None  # LATER / EXPIRED
    value: str = ""  # the directory's text (INVALID)


def account_expiry(value: str | None, now: datetime) -> Expiry:
    """An account's expiry state at `now` (the run's time) from its FILETIME text; an
    absent value never expires."""
    if value is None:
        return Expiry(ExpiryState.NEVER)
    try:
        at = filetime(value)
    except ValueError:
        return Expiry(ExpiryState.INVALID, value=value)
    if at is None:
        return Expiry(ExpiryState.NEVER)
    return Expiry(ExpiryState.EXPIRED if at <= now else ExpiryState.LATER, at)


def expired_reason(at: datetime, attribute: str) -> str:
    """Why an expired account is disabled, for the run's report."""
    return f"account expired on {at.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({attribute})"


def expiry_problem(attribute: str, value: str, outcome: str) -> str:
    return (
        f"{attribute} {value!r} is not a time (a FILETIME: a whole number of 100-ns "
        f"intervals since 1601, 0 or 9223372036854775807 for never); {outcome}"
    )


def map_entry(
    ref: str,
    raw: Mapping[str, Sequence[bytes]],
    amap: AttributeMap,
    *,
    region: str | None,
    now: datetime,
    profile: str | None = None,
    enabled: bool | None = None,
    keep_ref: bool = True,
) -> tuple[SourceUser | None, list[Problem]]:
    """Map one entry; None (with a problem) when it lacks a usable id or primary mail.

    `enabled` is the caller's answer (`enabled = "filter"`), else `is_enabled` decides.
    Either way an account whose expiry time (`expires_attribute`) is at or before `now`,
    the run's time, is disabled, with the reason on the user (`why_disabled`).

    The primary address is the first valid `mail` value, else the `SMTP:` one of
    `proxyAddresses`; invalid values are reported and skipped. An entry with an id but
    no valid address is "held": its problem names the id, and the planner leaves that
    user's row as it is (it is not gone from the directory).

    `keep_ref=False` leaves `ref` empty on the user (100,000 DNs cost memory); problems
    found here still name the DN, and the planner names users by their address.
    """
    attrs = lower_keys(raw)
    problems: list[Problem] = []
    external_id = decode_id(attrs.get(amap.id.lower(), ()), amap.id_format)
    if external_id is None:
        return None, [Problem(ref, f"no usable {amap.id}; user skipped")]

    alias_values: list[str] = []
    for name in amap.aliases:
        alias_values.extend(texts(attrs, name))
    mails = texts(attrs, amap.mail)
    if amap.aliases_format == "proxy":
        proxy_primary, alias_values = parse_proxy_addresses(alias_values)
        if proxy_primary is not None:
            mails.append(proxy_primary)  # the primary when no `mail` value is valid
    # every value checked once; the first valid `mail` value (else SMTP:) is the primary
    cleaned = {value: clean_address(value) for value in (*mails, *alias_values)}
    primary = next((cleaned[v] for v in mails if cleaned[v] is not None), None)
    if primary is None:
        what = f"no {amap.mail}" if not mails else f"no valid mail address in {mails[:3]!r}"
        why = f"{what}; its row is left unchanged (a new user is not added)"
        return None, [Problem(ref, why, held_id=external_id)]
    aliases: set[str] = set()
    for value, addr in cleaned.items():
        if addr is None:
            kind = "mail" if value in mails else "alias"
            problems.append(Problem(ref, f"invalid {kind} address {value!r} ignored"))
        elif addr != primary:
            aliases.add(addr)

    keep: set[str] = set()
    # The first value that is a mobile number, over the mapped attributes in order (a
    # landline in `mobile` does not hide the mobile in `otherMobile`); none: reported, the
    # stored mobile kept.
    mobile: str | None = None
    passed: list[str] = []  # values before it that are no mobile number
    for value in (v for name in amap.mobile for v in texts(attrs, name)):
        mobile = normalise_mobile(value, region)
        if mobile is not None:
            break
        passed.append(value)
    if mobile is None and passed:
        problems.append(Problem(ref, mobile_problem(passed[0])))
        keep.add("mobile")
    elif passed:
        problems.append(Problem(ref, mobile_problem(passed[0], f"ignored, {mobile} used")))

    sender_id = first_text(attrs, [amap.sender_id]) if amap.sender_id else None
    if sender_id is not None and not SENDER_ID_RE.match(sender_id):
        problems.append(
            Problem(
                ref,
                f"invalid sender ID {sender_id!r} (up to 11 letters/digits or 15 digits); "
                "left unchanged",
            )
        )
        sender_id = None
        keep.add("sender_id")

    cost_centre = first_text(attrs, [amap.cost_centre]) if amap.cost_centre else None
    if cost_centre is not None and not usable_cost_centre(cost_centre):
        problems.append(Problem(ref, COST_CENTRE_PROBLEM))
        cost_centre = None
        keep.add("cost_centre")

    unknown = "enabled state left unchanged (a new user is not added)"
    why_disabled = ""
    state = is_enabled(attrs, amap) if enabled is None else enabled
    expiry = Expiry(ExpiryState.NEVER)
    if amap.expires_attribute:
        expiry = account_expiry(first_text(attrs, [amap.expires_attribute]), now)
    if expiry.state is ExpiryState.EXPIRED:  # disabled, whatever the account's flag says
        assert expiry.at is not None and amap.expires_attribute is not None
        state = False
        why_disabled = expired_reason(expiry.at, amap.expires_attribute)
    else:
        if state is None:
            name = amap.enabled_attribute or "userAccountControl"
            shown = first_text(attrs, [name])
            what = "missing" if shown is None else f"not a number ({shown!r})"
            problems.append(Problem(ref, f"{name} {what}; {unknown}"))
        if expiry.state is ExpiryState.INVALID:
            assert amap.expires_attribute is not None
            outcome = "ignored (the account is disabled)" if state is False else unknown
            problems.append(
                Problem(ref, expiry_problem(amap.expires_attribute, expiry.value, outcome))
            )
            if state:
                state = None
    if state is None:
        keep.add("enabled")
    enabled = bool(state)

    display_name = one_line(first_text(attrs, amap.display_name) or "")[:MAX_DISPLAY_NAME]
    # few distinct values across many users: share one string object each
    sender_id = sys.intern(sender_id) if sender_id else sender_id
    cost_centre = sys.intern(cost_centre) if cost_centre else cost_centre
    user = SourceUser(
        external_id=external_id,
        address=primary,
        aliases=frozenset(aliases),
        display_name=display_name,
        mobile=mobile,
        sender_id=sender_id,
        cost_centre=cost_centre,
        profile=profile,
        enabled=enabled,
        ref=ref if keep_ref else "",
        keep=frozenset(keep),
        why_disabled=why_disabled,
    )
    return user, problems


def with_overrides(base: AttributeMap, **overrides: object) -> AttributeMap:
    """The preset with some fields replaced (the config's `[mapping]` table)."""
    return replace(base, **overrides)  # type: ignore[arg-type]
