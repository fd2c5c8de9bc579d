"""Read users (and the groups for profile rules) from LDAP / AD with ldap3, read-only.

ldap3 reports a search cut short by a size, time or admin limit as success (and its
paged search just stops), so the result code is checked after every search: anything
but success raises `DirectoryError` and the run aborts before planning. Filters only
contain admin-configured text, parsed at start-up; no directory or user value is ever
put into a filter (group nesting is resolved from `member` / `uniqueMember` values, not
by searching).
Bind, TLS and network failures become one-line `DirectoryError`s.
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

with warnings.catch_warnings():  # ldap3 2.9.1 + pyasn1 >= 0.6.1: "tagMap is deprecated"
    warnings.filterwarnings("ignore", "(tag|type)Map is deprecated", DeprecationWarning)
    from ldap3 import LEVEL, SCHEMA, SUBTREE, Connection, Server, Tls
    from ldap3.core import exceptions as lx

from bridge.errors import ConfigError, TemporaryFailure
from bridge.files import UnreadableFile, read_text
from dirsync.config import LdapConfig, ldap_endpoint
from dirsync.groups import ProfileResolver, ProfileRule
from dirsync.ldap_errors import bind_failure, tls_failure
from dirsync.mapping import PRESETS, decode_id, lower_keys, map_entry, resolve_names, texts
from dirsync.model import Problem, SourceUser

Progress = Callable[[int], None]


class DirectoryError(TemporaryFailure):
    """The directory could not be read completely; the message is one line for the admin."""


@dataclass(slots=True)
class ReadResult:
    users: list[SourceUser] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def read_password(cfg: LdapConfig) -> str:
    """The bind password from the environment variable or file; never from the command line."""
    if cfg.password_env:
        value = os.environ.get(cfg.password_env)
        if value is None:
            raise ConfigError(
                f"ldap.password_env: environment variable {cfg.password_env} is unset"
            )
        return value
    assert cfg.password_file is not None
    try:
        return read_text(cfg.password_file).rstrip("\r\n")
    except UnreadableFile as exc:
        raise ConfigError(f"ldap.password_file: {exc}") from None


def connect(cfg: LdapConfig, password: str) -> Connection:
    """An open, bound, read-only connection (StartTLS before the bind when configured)."""
    endpoint = ldap_endpoint(cfg.url)  # checked with the config: never raises here
    use_ssl = endpoint.use_ssl
    tls = None
    if use_ssl or cfg.starttls:
        tls = Tls(
            validate=ssl.CERT_REQUIRED if cfg.tls_verify else ssl.CERT_NONE,
            ca_certs_file=str(cfg.ca_file) if cfg.ca_file else None,
            valid_names=[cfg.tls_hostname] if cfg.tls_hostname else None,
            version=ssl.PROTOCOL_TLS_CLIENT,
        )
    server = Server(
        endpoint.host, port=endpoint.port, use_ssl=use_ssl, tls=tls, get_info=SCHEMA,
        connect_timeout=max(1, int(cfg.connect_timeout)),
    )  # fmt: skip
    conn = Connection(
        server,
        user=cfg.bind_dn,
        password=password,
        read_only=True,
        auto_referrals=False,
        raise_exceptions=True,
        receive_timeout=max(1, int(cfg.timeout)),
        # An attribute the entry lacks is left out of the answer, not added as an empty
        # list under the requested spelling (which would hide the server's own values).
        return_empty_attributes=False,
        check_names=False,  # filters are the admin's text; the schema only names attributes
    )
    where = f"{cfg.url}"
    try:
        conn.open()
        if cfg.starttls:
            conn.start_tls(read_server_info=False)
        conn.bind(read_server_info=False)
    except lx.LDAPStartTLSError as exc:
        raise DirectoryError(tls_failure(f"{where} (StartTLS)", str(exc))) from exc
    except lx.LDAPSocketOpenError as exc:
        text = str(exc)
        if "certificate" in text.lower() or "ssl" in text.lower():
            raise DirectoryError(tls_failure(where, text)) from exc
        raise DirectoryError(f"cannot connect to {where}: {_short(exc)}") from exc
    except lx.LDAPOperationResult as exc:
        raise DirectoryError(
            bind_failure(cfg.bind_dn, exc.result or 0, exc.description or "", exc.message or "")
        ) from exc
    except lx.LDAPException as exc:
        raise DirectoryError(f"{where}: {_short(exc)}") from exc
    if not conn.bound:
        raise DirectoryError(f"bind as {cfg.bind_dn} failed: {conn.result.get('description')}")
    with contextlib.suppress(lx.LDAPException):  # no readable schema: names used as written
        conn.refresh_server_info()
    _lean_entries(conn)
    return conn


def canonical_names(conn: Connection) -> Callable[[str], str | None]:
    """The schema's first name for an attribute name (any alias, any case), None for a name
    the schema does not have; every name as written when the schema could not be read."""
    schema = conn.server.schema
    types = schema.attribute_types if schema is not None else None
    if not types:
        return lambda name: name

    def canonical(name: str) -> str | None:
        if name not in types:
            return None
        names = types[name].name
        return str(names[0]) if names else name

    return canonical


def with_schema_names(conn: Connection, cfg: LdapConfig) -> LdapConfig:
    """`cfg` with its mapping spelled as the directory's schema spells it (`resolve_names`)."""
    mapping = resolve_names(cfg.mapping, PRESETS[cfg.preset], canonical_names(conn))
    return replace(cfg, mapping=mapping)


def _lean_entries(conn: Connection) -> None:
    """Decode search entries to raw bytes only (this connection, not ldap3 as a whole).

    ldap3 decodes every value twice (raw and "formatted"), which costs more than half of
    a 100,000-user read; dirsync only uses the raw values. Everything that is not a plain
    search entry still goes through ldap3's own decoder. `attributes` mirrors the raw
    dict so ldap3's range and empty-attribute handling keep working.
    """
    strategy = conn.strategy
    original = strategy.decode_response_fast

    def decode(message: dict[str, Any]) -> dict[str, Any]:
        if message["protocolOp"] != 4 or message["controls"]:
            return original(message)  # type: ignore[no-any-return]
        payload = message["payload"]
        raw: dict[str, list[bytes]] = {}
        for attribute in payload[1][3]:
            values = attribute[3][1][3]
            raw[bytes(attribute[3][0][3]).decode("utf-8")] = (
                [bytes(v[3]) for v in values] if values else []
            )
        return {
            "type": "searchResEntry",
            "dn": bytes(payload[0][3]).decode("utf-8", "replace"),
            "raw_attributes": raw,
            "attributes": dict(raw),
        }

    strategy.decode_response_fast = decode


def paged(
    conn: Connection, cfg: LdapConfig, base: str, flt: str, attributes: Sequence[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(dn, raw attributes) of every entry; raises DirectoryError unless the search succeeded."""
    scope = SUBTREE if cfg.scope == "subtree" else LEVEL
    try:
        for item in conn.extend.standard.paged_search(
            base, flt, scope, attributes=list(attributes), paged_size=cfg.page_size,
            time_limit=int(cfg.timeout), generator=True,
        ):  # fmt: skip
            if item.get("type") == "searchResEntry":
                yield item["dn"], item["raw_attributes"]
    except lx.LDAPOperationResult as exc:
        raise DirectoryError(f"search of {base} failed: {exc.description} ({exc.result})") from exc
    except lx.LDAPException as exc:
        raise DirectoryError(f"search of {base} failed: {_short(exc)}") from exc
    result = conn.result or {}
    if result.get("result") != 0:  # sizeLimitExceeded & co. arrive as "success" otherwise
        raise DirectoryError(
            f"search of {base} ended with {result.get('description')} ({result.get('result')}): "
            "the answer may be incomplete, nothing changed"
        )


# NameAndOptionalUID (RFC 4517): a uniqueMember value may end in `#'0110'B`
_OPTIONAL_UID = re.compile(r"#'[01]*'B$")


def read_groups(conn: Connection, cfg: LdapConfig) -> dict[str, list[str]]:
    """Every group under the group bases with its direct members: the DNs of `member`
    (groupOfNames, AD groups) and of `uniqueMember` (groupOfUniqueNames, without the
    optional `#'…'B` suffix), as far as the directory's schema has these attributes."""
    canonical = canonical_names(conn)
    names = [n for n in (canonical("member"), canonical("uniqueMember")) if n is not None]
    members: dict[str, list[str]] = {}
    if not names:
        return members
    for base in cfg.group_base_dns:
        for dn, raw in paged(conn, cfg, base, cfg.group_filter, names):
            attrs = lower_keys(raw)
            unique = texts(attrs, "uniqueMember")
            members[dn] = texts(attrs, "member") + [_OPTIONAL_UID.sub("", v) for v in unique]
    return members


def read_enabled_ids(conn: Connection, cfg: LdapConfig) -> set[str]:
    """Ids of the users matching `enabled_filter` (mapping.enabled = "filter")."""
    amap = cfg.mapping
    flt = f"(&{cfg.filter}{amap.enabled_filter})"
    ids: set[str] = set()
    for base in cfg.base_dns:
        for _, raw in paged(conn, cfg, base, flt, [amap.id]):
            i = decode_id(lower_keys(raw).get(amap.id.lower(), ()), amap.id_format)
            if i:
                ids.add(i)
    return ids


def read_directory(
    cfg: LdapConfig,
    password: str,
    *,
    region: str | None,
    now: datetime,
    rules: Sequence[ProfileRule] = (),
    default_profile: str | None = None,
    progress: Progress | None = None,
) -> ReadResult:
    """One full read: groups (if there are profile rules), then all users, page by page.
    `now` is the run's time (an account whose expiry time has passed is disabled)."""
    conn = connect(cfg, password)
    try:
        cfg = with_schema_names(conn, cfg)
        return _read(conn, cfg, region, now, rules, default_profile, progress)
    finally:
        with contextlib.suppress(lx.LDAPException):
            conn.unbind()


def _read(
    conn: Connection,
    cfg: LdapConfig,
    region: str | None,
    now: datetime,
    rules: Sequence[ProfileRule],
    default_profile: str | None,
    progress: Progress | None,
) -> ReadResult:
    amap = cfg.mapping
    result = ReadResult()
    resolver = ProfileResolver(rules, read_groups(conn, cfg) if rules else {}, default_profile)
    for group in resolver.missing_groups:
        result.problems.append(Problem(group, missing_group(cfg.group_base_dns)))
    enabled_ids = read_enabled_ids(conn, cfg) if amap.enabled == "filter" else None
    seen: set[str] = set()
    count = 0
    for base in cfg.base_dns:
        for dn, raw in paged(conn, cfg, base, cfg.filter, amap.attributes()):
            if dn.lower() in seen:  # overlapping base DNs
                continue
            seen.add(dn.lower())
            attrs = lower_keys(raw)
            member_of = texts(attrs, amap.member_of) if amap.member_of else []
            enabled = None
            if enabled_ids is not None:
                enabled = decode_id(attrs.get(amap.id.lower(), ()), amap.id_format) in enabled_ids
            user, problems = map_entry(
                dn,
                attrs,
                amap,
                region=region,
                now=now,
                profile=resolver.profile_for(dn, member_of),
                enabled=enabled,
                keep_ref=False,
            )
            if user is not None:
                result.users.append(user)
            result.problems.extend(problems)
            count += 1
            if progress is not None and count % 1000 == 0:
                progress(count)
    if progress is not None:
        progress(count)
    return result


def missing_group(group_base_dns: Sequence[str]) -> str:
    """The problem of a profile rule whose group was not read (users get no profile by it)."""
    return (
        "profile rule group not found under ldap.group_base_dns ("
        + "; ".join(group_base_dns)
        + ") or it has no members: check the rule's DN, and set group_base_dns to the OUs "
        "holding the group and the groups nested in it (default: base_dns)"
    )


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] or type(exc).__name__
