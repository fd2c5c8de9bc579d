"""dirsync's settings: the `[dirsync]` table of the bridge's settings file, read once with
every key and value validated.

`from_settings` reads the table out of the bridge's settings (its database_url, [defaults]
default_country and EHLO name apply). `load_config` still reads a separate dirsync
settings file (deprecated; `separate_file` tells one from the bridge's file). Any invalid
key or value raises `ConfigError` with one line naming the key and what is expected.
`examples/dirsync/bridge-dirsync.toml` documents every key.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import urlsplit

from bridge.errors import ConfigError
from bridge.files import UnreadableFile, read_toml
from bridge.intake.settings import SmtpSettings
from bridge.notices.settings import MailerSettings
from bridge.settings import Settings, load_settings
from bridge.tenants.policy import Policy
from dirsync.exclusions import Exclusions
from dirsync.groups import ProfileRule
from dirsync.mapping import (
    ACCOUNT_EXPIRES,
    PRESET_FILTERS,
    PRESET_GROUP_FILTERS,
    PRESETS,
    AttributeMap,
    with_overrides,
)
from dirsync.safety import Limits

DEFAULT_DATABASE_URL = "sqlite:///var/bridge.db"
MOVE_INTO_BRIDGE_SETTINGS = (
    "a separate dirsync settings file is deprecated: move its keys into a [dirsync] table "
    "of the bridge's settings file ([ldap] becomes [dirsync.ldap], [[profiles]] "
    "[[dirsync.profiles]], likewise [safety], [exclude] and [report]; drop database_url and "
    "bridge_config, the bridge's own settings apply) and run `mailsms dirsync -c "
    "BRIDGE_SETTINGS_FILE`; see docs/dirsync.md"
)
Scope = Literal["subtree", "one"]


@dataclass(frozen=True, slots=True)
class LdapConfig:
    url: str
    bind_dn: str
    password_env: str | None = None
    password_file: Path | None = None
    starttls: bool = False
    ca_file: Path | None = None
    tls_verify: bool = True
    tls_hostname: str | None = None
    allow_plaintext: bool = False
    connect_timeout: float = 10.0
    timeout: float = 60.0
    preset: str = "ad"
    base_dns: tuple[str, ...] = ()
    filter: str = ""
    scope: Scope = "subtree"
    page_size: int = 500
    group_base_dns: tuple[str, ...] = ()
    group_filter: str = ""
    mapping: AttributeMap = field(default_factory=lambda: PRESETS["ad"])


@dataclass(frozen=True, slots=True)
class ReportConfig:
    mail_to: tuple[str, ...] = ()
    mail_from: str = "dirsync@localhost"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_starttls: bool = False
    ehlo_name: str = SmtpSettings().hostname  # or the bridge's, with bridge_config
    smtp_ca_file: Path | None = None  # CA(s) of the relay's certificate; else the system's
    when: Literal["always", "changes", "failure"] = "changes"
    log_file: Path | None = None


@dataclass(frozen=True, slots=True)
class DirsyncConfig:
    customer: str
    database_url: str = DEFAULT_DATABASE_URL
    default_country: str | None = None
    # The bridge's [defaults] default_country (with bridge_config; else its built-in
    # default): national numbers of a customer without its own default_country.
    bridge_default_country: str = Policy().default_country
    ldap: LdapConfig | None = None
    profiles: tuple[ProfileRule, ...] = ()
    default_profile: str | None = None
    limits: Limits = field(default_factory=Limits)
    exclusions: Exclusions = field(default_factory=Exclusions)
    report: ReportConfig = field(default_factory=ReportConfig)
    lock_stale_minutes: int = 120


class _Table:
    """Pops typed values out of one TOML table; leftover keys are errors."""

    def __init__(self, data: dict[str, Any], prefix: str) -> None:
        self.data, self.prefix = dict(data), prefix

    def _fail(self, key: str, expected: str, value: object) -> ConfigError:
        return ConfigError(f"{self.prefix}{key}: expected {expected}, got {value!r}")

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        if key not in self.data:
            if required:
                raise ConfigError(f"{self.prefix}{key}: required, expected text")
            return default
        value = self.data.pop(key)
        if not isinstance(value, str) or not value.strip():
            raise self._fail(key, "non-empty text", value)
        return value.strip()

    def choice(self, key: str, default: str, choices: tuple[str, ...]) -> str:
        value = self.text(key, default)
        if value not in choices:
            raise self._fail(key, "one of " + ", ".join(choices), value)
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.data.pop(key, default)
        if not isinstance(value, bool):
            raise self._fail(key, "true or false", value)
        return value

    def number(self, key: str, default: float, lo: float, hi: float, *, integer: bool) -> float:
        value = self.data.pop(key, default)
        ok = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok or not lo <= value <= hi:
            kind = "an integer" if integer else "a number"
            raise self._fail(key, f"{kind} from {lo:g} to {hi:g}", value)
        return float(value)

    def texts(self, key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.data.pop(key, list(default))
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self._fail(key, "a list of non-empty texts", value)
        return tuple(cast(list[str], value))

    def table(self, key: str) -> _Table:
        value = self.data.pop(key, {})
        if not isinstance(value, dict):
            raise self._fail(key, "a table", value)
        return _Table(value, f"{self.prefix}{key}.")

    def done(self) -> None:
        if self.data:
            key = sorted(self.data)[0]
            raise ConfigError(f"{self.prefix}{key}: unknown key")


def _read(path: Path) -> dict[str, Any]:
    try:
        return read_toml(path)
    except UnreadableFile as exc:
        raise ConfigError(f"the config file {exc}") from None


def separate_file(path: Path) -> bool:
    """Whether `path` is a separate dirsync settings file (`customer` at its top, no
    [dirsync] table) rather than the bridge's settings file."""
    data = _read(path)
    return "dirsync" not in data and "customer" in data


def from_settings(settings: Settings, where: str, **overrides: Any) -> DirsyncConfig:
    """The `[dirsync]` table of the bridge's `settings` (read from `where`), validated;
    `overrides` (e.g. database_url) win over the settings."""
    if settings.dirsync is None:
        raise ConfigError(
            f"{where}: no [dirsync] table; add one (see examples/dirsync/bridge-dirsync.toml) "
            "or give the settings file that has it with -c FILE"
        )
    data = dict(settings.dirsync)
    for key in ("database_url", "bridge_config"):
        if key in data:
            raise ConfigError(
                f"{where}: dirsync.{key}: not in [dirsync]; the bridge's own settings apply "
                "(its database_url, or --database-url)"
            )
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return _with_bridge(data, settings)
    except ConfigError as exc:
        raise ConfigError(f"{where}: dirsync.{exc}") from None


def load_config(path: Path, **overrides: Any) -> DirsyncConfig:
    """Read and validate a separate dirsync settings file (deprecated); `overrides` (e.g.
    database_url) win over the file."""
    data = _read(path)
    data.update({k: v for k, v in overrides.items() if v is not None})
    bridge_config = data.pop("bridge_config", None)
    if bridge_config is None:
        return parse_config(data)
    if not isinstance(bridge_config, str) or not bridge_config.strip():
        raise ConfigError(
            f"bridge_config: expected the bridge's settings file, got {bridge_config!r}"
        )
    return _with_bridge(data, load_settings(path.parent / bridge_config))


def _with_bridge(data: dict[str, Any], bridge: Settings) -> DirsyncConfig:
    """dirsync's settings `data` completed from the bridge's: its database (unless `data`
    names one), the EHLO name of the report mail, [defaults] default_country."""
    data.setdefault("database_url", bridge.database_url)
    report = data.get("report")
    if isinstance(report, dict) and "ehlo_name" not in report:
        data["report"] = {**report, "ehlo_name": bridge.mailer.ehlo_name}
    cfg = parse_config(data)
    return replace(cfg, bridge_default_country=bridge.defaults.default_country)


def parse_config(data: dict[str, Any]) -> DirsyncConfig:
    top = _Table(data, "")
    customer = cast(str, top.text("customer", required=True))
    database_url = cast(str, top.text("database_url", DEFAULT_DATABASE_URL))
    country = top.text("default_country")
    if country is not None and not re.fullmatch(r"[A-Za-z]{2}", country):
        raise ConfigError(f"default_country: expected a 2-letter ISO code, got {country!r}")
    stale = int(top.number("lock_stale_minutes", 120, 1, 10_080, integer=True))
    ldap = _ldap(top.table("ldap")) if "ldap" in top.data else None
    rules = _profiles(top.data.pop("profiles", []))
    default_profile = top.text("default_profile")
    limits = _limits(top.table("safety"))
    exclusions = _exclusions(top.table("exclude"))
    report = _report(top.table("report"))
    top.done()
    return DirsyncConfig(
        customer=customer,
        database_url=database_url,
        default_country=country.upper() if country else None,
        ldap=ldap,
        profiles=rules,
        default_profile=default_profile,
        limits=limits,
        exclusions=exclusions,
        report=report,
        lock_stale_minutes=stale,
    )


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where `ldap.url` points: host, port, and whether TLS starts at once (ldaps)."""

    host: str
    port: int
    use_ssl: bool


URL_FORM = "expected ldap://host[:port] or ldaps://host[:port]"


def ldap_endpoint(url: str) -> Endpoint:
    """The one reading of `ldap.url`; any other form is a `ConfigError` saying what to write.

    A user name or password in the url is refused without repeating it: the account
    belongs in `bind_dn`, the password in `password_env` / `password_file`, and the url is
    shown in every connection error.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        raise ConfigError(f"ldap.url: {URL_FORM}, got {url!r}") from None
    if "@" in parts.netloc:
        raise ConfigError(
            "ldap.url: must not hold a user name or password (the part before '@'); write "
            "ldap[s]://host[:port], the account in bind_dn and the password in password_env "
            "or password_file"
        )
    scheme = parts.scheme.lower()
    if (
        scheme not in ("ldap", "ldaps")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or re.search(r"\s", url)
    ):
        raise ConfigError(f"ldap.url: {URL_FORM}, got {url!r}")
    try:
        port = 0 if parts.netloc.endswith(":") else parts.port
    except ValueError:  # not a number, or above 65535
        port = 0
    if port is not None and not 1 <= port <= 65535:
        raise ConfigError(f"ldap.url: the port must be a number from 1 to 65535, got {url!r}")
    use_ssl = scheme == "ldaps"
    return Endpoint(parts.hostname, port or (636 if use_ssl else 389), use_ssl)


def _ldap(t: _Table) -> LdapConfig:
    url = cast(str, t.text("url", required=True))
    endpoint = ldap_endpoint(url)
    bind_dn = cast(str, t.text("bind_dn", required=True))
    password_env, password_file = t.text("password_env"), t.text("password_file")
    if (password_env is None) == (password_file is None):
        raise ConfigError("ldap.password_env / ldap.password_file: expected exactly one of them")
    starttls = t.flag("starttls", False)
    allow_plaintext = t.flag("allow_plaintext", False)
    if not endpoint.use_ssl and not starttls and not allow_plaintext:
        raise ConfigError(
            "ldap.starttls: expected true for an ldap:// url (or ldaps://, or "
            "allow_plaintext = true for a test directory)"
        )
    ca_file = t.text("ca_file")
    preset = t.choice("preset", "ad", tuple(PRESETS))
    scope = t.choice("scope", "subtree", ("subtree", "one"))
    base_dns = t.texts("base_dns")
    if not base_dns:
        raise ConfigError("ldap.base_dns: required, expected a list of DNs")
    cfg = LdapConfig(
        url=url,
        bind_dn=bind_dn,
        password_env=password_env,
        password_file=Path(password_file) if password_file else None,
        starttls=starttls,
        ca_file=Path(ca_file) if ca_file else None,
        tls_verify=t.flag("tls_verify", True),
        tls_hostname=t.text("tls_hostname"),
        allow_plaintext=allow_plaintext,
        connect_timeout=t.number("connect_timeout", 10, 1, 300, integer=False),
        timeout=t.number("timeout", 60, 1, 3600, integer=False),
        preset=preset,
        base_dns=base_dns,
        filter=_filter(t, "filter", PRESET_FILTERS[preset]),
        scope=cast(Scope, scope),
        page_size=int(t.number("page_size", 500, 1, 1000, integer=True)),
        group_base_dns=t.texts("group_base_dns", base_dns),
        group_filter=_filter(t, "group_filter", PRESET_GROUP_FILTERS[preset]),
        mapping=_mapping(t.table("mapping"), PRESETS[preset]),
    )
    t.done()
    return cfg


def _filter(t: _Table, key: str, default: str) -> str:
    value = cast(str, t.text(key, default))
    if not check_filter(value):
        raise ConfigError(f"ldap.{key}: expected a valid LDAP filter in parentheses, got {value!r}")
    return value


def check_filter(value: str) -> bool:
    """Parse a configured filter once at start-up (balanced, ldap3 accepts it)."""
    with warnings.catch_warnings():  # ldap3 2.9.1 + pyasn1 >= 0.6.1: "tagMap is deprecated"
        warnings.filterwarnings("ignore", "(tag|type)Map is deprecated", DeprecationWarning)
        from ldap3.core.exceptions import LDAPInvalidFilterError
        from ldap3.operation.search import parse_filter

    if not (value.startswith("(") and value.endswith(")")):
        return False
    try:
        parse_filter(
            value, None, auto_escape=False, auto_encode=True, validator=None, check_names=False
        )
    except (LDAPInvalidFilterError, IndexError, ValueError, AttributeError, TypeError):
        return False  # ldap3's parser fails in several ways on unbalanced input
    return True


_MAP_TEXT = ("id", "mail", "sender_id", "cost_centre", "member_of", "enabled_attribute")
_MAP_LIST = ("aliases", "mobile", "display_name", "disabled_values", "extra")


def _mapping(t: _Table, base: AttributeMap) -> AttributeMap:
    changes: dict[str, object] = {}
    for key in _MAP_TEXT:
        if key in t.data:
            value = t.data[key]
            if value == "" and key in ("sender_id", "cost_centre", "member_of"):
                t.data.pop(key)
                changes[key] = None  # "" switches the field off
            else:
                changes[key] = t.text(key)
    for key in _MAP_LIST:
        if key in t.data:
            changes[key] = t.texts(key)
    if "id_format" in t.data:
        changes["id_format"] = t.choice("id_format", "guid", ("guid", "text"))
    if "aliases_format" in t.data:
        changes["aliases_format"] = t.choice("aliases_format", "proxy", ("proxy", "plain"))
    if "enabled" in t.data:
        changes["enabled"] = t.choice("enabled", "uac", ("uac", "always", "attribute", "filter"))
    if "enabled_filter" in t.data:
        changes["enabled_filter"] = _filter(t, "enabled_filter", "")
    expires = _expires_attribute(t)
    t.done()
    amap = with_overrides(base, **changes)
    if expires is None:  # default: AD's accountExpires where AD's enabled flag is read
        amap = replace(amap, expires_attribute=ACCOUNT_EXPIRES if amap.enabled == "uac" else None)
    else:
        amap = replace(amap, expires_attribute=expires or None, expires_named=bool(expires))
    if amap.enabled == "filter" and not amap.enabled_filter:
        raise ConfigError('ldap.mapping.enabled_filter: required when enabled = "filter"')
    if amap.enabled == "attribute" and not amap.enabled_attribute:
        raise ConfigError('ldap.mapping.enabled_attribute: required when enabled = "attribute"')
    return amap


def _expires_attribute(t: _Table) -> str | None:
    """`mapping.expires_attribute`: None when not set, "" to read no expiry time, else the
    attribute's name."""
    if "expires_attribute" not in t.data:
        return None
    value = t.data.pop("expires_attribute")
    if not isinstance(value, str):
        raise ConfigError(
            "ldap.mapping.expires_attribute: expected the name of the attribute holding the "
            'account\'s expiry time (a Windows FILETIME, e.g. "accountExpires"), or "" to '
            f"read none, got {value!r}"
        )
    return value.strip()


def _profiles(value: object) -> tuple[ProfileRule, ...]:
    if not isinstance(value, list):
        raise ConfigError(f"profiles: expected [[profiles]] tables, got {value!r}")
    rules = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise ConfigError(f"profiles[{i}]: expected a table with group and profile")
        t = _Table(item, f"profiles[{i}].")
        rules.append(
            ProfileRule(
                cast(str, t.text("group", required=True)),
                cast(str, t.text("profile", required=True)),
            )
        )
        t.done()
    return tuple(rules)


def _limits(t: _Table) -> Limits:
    limits = Limits(
        min_users=int(t.number("min_users", 1, 1, 10_000_000, integer=True)),
        max_disable_count=int(t.number("max_disable_count", 50, 0, 10_000_000, integer=True)),
        max_disable_percent=t.number("max_disable_percent", 10, 0, 100, integer=False),
        retention_days=int(t.number("retention_days", 90, 0, 36_500, integer=True)),
    )
    t.done()
    return limits


def _exclusions(t: _Table) -> Exclusions:
    patterns = t.texts("address_patterns")
    for p in patterns:
        try:
            re.compile(p)
        except re.error as exc:
            raise ConfigError(
                f"exclude.address_patterns: invalid regular expression {p!r} ({exc})"
            ) from exc
    excl = Exclusions.build(t.texts("addresses"), t.texts("ids"), patterns)
    t.done()
    return excl


def _report(t: _Table) -> ReportConfig:
    log_file = t.text("log_file")
    ca_file = t.text("smtp_ca_file")
    cfg = ReportConfig(
        mail_to=t.texts("mail_to"),
        mail_from=cast(str, t.text("mail_from", "dirsync@localhost")),
        smtp_host=cast(str, t.text("smtp_host", "localhost")),
        smtp_port=int(t.number("smtp_port", 25, 1, 65535, integer=True)),
        smtp_starttls=t.flag("smtp_starttls", False),
        ehlo_name=_ehlo_name(t),
        smtp_ca_file=Path(ca_file) if ca_file else None,
        when=cast(
            Literal["always", "changes", "failure"],
            t.choice("when", "changes", ("always", "changes", "failure")),
        ),
        log_file=Path(log_file) if log_file else None,
    )
    t.done()
    return cfg


def _ehlo_name(t: _Table) -> str:
    name = cast(str, t.text("ehlo_name", SmtpSettings().hostname))
    try:
        MailerSettings(ehlo_name=name)
    except ValueError:
        raise ConfigError(
            f"report.ehlo_name: expected a fully qualified host name, got {name!r}"
        ) from None
    return name
