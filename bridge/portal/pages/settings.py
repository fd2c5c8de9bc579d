"""The settings page: the customer → profile → user cascade, each value's source, edits per level.

What it shows is `mailsms settings show`: every effective value and the level it came
from (`tenants.policy.resolve`/`describe` over the [defaults] table and the levels'
rows). An edit is `mailsms settings set/unset`: the same `parse_text` and
`check_setting` (so the same refusals, word for word), then `provision.apply.change_setting`.
A customer admin changes its own customer, its profiles and its users; the limits an
operator sets for a customer (OPERATOR_ONLY) it sees but does not change.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from typing import Any, Final
from urllib.parse import urlencode

from sqlalchemy import Connection
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bridge.errors import InputError
from bridge.portal.base import PREFIX, Forbidden, NotFound, Pages, Scope
from bridge.portal.i18n import N_
from bridge.portal.queries_settings import (
    ProfileItem,
    UserDetail,
    customer_settings,
    find_user,
    profiles,
)
from bridge.portal.viewer import Viewer
from bridge.provision.apply import change_setting
from bridge.provision.file import TenantsError
from bridge.tenants.policy import (
    CUSTOMER_ONLY,
    SETTING_NAMES,
    PolicyError,
    check_setting,
    describe,
    resolve,
)
from bridge.tenants.policy_values import parse_text
from bridge.tenants.senders import find_sender

log = logging.getLogger("bridge.portal")

PATH: Final = f"{PREFIX}/settings"
# Limits and prices the operator sets for a customer: a customer admin sees them, only an
# operator changes them (at any level, since a lower level would override the customer's).
OPERATOR_ONLY: Final = frozenset(
    {"rate_per_minute", "rate_per_day", "allowed_countries", "denied_countries", "price_per_part"}
)
DONE: Final = {
    "set": N_("The setting is saved; new mails use it within a few seconds."),
    "unset": N_("The setting is removed from this level; the level above applies again."),
}
# The level a value comes from (`tenants.policy.describe`), in words for the page.
SOURCES: Final = {
    "default": N_("default"),
    "customer": N_("customer"),
    "profile": N_("profile"),
    "user": N_("user"),
    "mail": N_("this mail"),
}


def shown(value: Any) -> str:
    """A value as `settings show` prints it (lists comma-separated, odd strings quoted)."""
    if isinstance(value, tuple | list):
        return ", ".join(str(v) for v in value) if value else "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return json.dumps(value) if value in ("", "\n") or value.strip() != value else value
    return str(value)


def as_text(name: str, value: Any) -> str:
    """A stored value as one would type it for `settings set` (what the form field holds)."""
    if value is None:
        return ""
    if isinstance(value, tuple | list):
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if name == "subject_separator":
        return str(value).encode("unicode_escape").decode()
    return str(value)


@dataclass(frozen=True, slots=True)
class Row:
    name: str
    effective: str
    source: str
    here: str  # the value at the level shown, as text ("" when not set there)
    set_here: bool
    editable: bool


@dataclass(frozen=True, slots=True)
class Level:
    """The level a request shows or changes."""

    kind: str  # customer | profile | user
    customer_id: int
    customer: str
    profile: ProfileItem | None
    user: UserDetail | None
    customer_settings: dict[str, Any]
    profiles: tuple[ProfileItem, ...]

    @property
    def target(self) -> str:
        """What `change_setting` names: the customer, "customer/profile" or the address."""
        if self.user is not None:
            return self.user.address
        if self.profile is not None:
            return f"{self.customer}/{self.profile.name}"
        return self.customer

    @property
    def own(self) -> dict[str, Any]:
        if self.user is not None:
            return self.user.user_settings
        if self.profile is not None:
            return self.profile.settings
        return self.customer_settings

    def params(self) -> dict[str, str]:
        if self.user is not None:
            return {"user": str(self.user.id)}
        if self.profile is not None:
            return {"profile": self.profile.name}
        return {}


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() and len(text) < 12 else None


def routes(pages: Pages) -> list[BaseRoute]:
    _ = pages._

    def url(scope: Scope, level: Level | None = None, **extra: str) -> str:
        query: dict[str, str] = {}
        if scope.choices and scope.customer:
            query["customer"] = scope.customer
        if level is not None:
            query.update(level.params())
        query.update(extra)
        return PATH + ("?" + urlencode(query) if query else "")

    async def level_of(
        scope: Scope, profile: str | None, user: str | None, address: str | None = None
    ) -> Level:
        assert scope.customer_id is not None and scope.customer is not None
        customer_id, customer = scope.customer_id, scope.customer

        def load(conn: Connection) -> Level:
            user_id = _int(user) if user else None
            if user and user_id is None:
                raise NotFound(_("There is no such user."))
            if address:
                sender = find_sender(conn, address.strip())
                if sender is None or sender.customer_id != customer_id:
                    raise NotFound(_("There is no user with that address (or alias)."))
                user_id = sender.user_id
            found_user = None
            if user_id is not None:
                found_user = find_user(conn, user_id, customer_id)
                if found_user is None:
                    raise NotFound(_("There is no such user."))
            items = tuple(profiles(conn, customer_id))
            found_profile = None
            if found_user is None and profile:
                found_profile = next((p for p in items if p.name == profile), None)
                if found_profile is None:
                    raise NotFound(_("There is no profile of that name."))
            return Level(
                "user" if found_user else "profile" if found_profile else "customer",
                customer_id,
                customer,
                found_profile,
                found_user,
                customer_settings(conn, customer_id),
                items,
            )

        return await pages.store.call(load)

    def rows(level: Level, viewer: Viewer) -> tuple[list[Row], str]:
        levels: list[dict[str, Any] | None] = [level.customer_settings, None, None]
        if level.user is not None:
            levels = [
                level.customer_settings,
                level.user.profile_settings,
                level.user.user_settings,
            ]
        elif level.profile is not None:
            levels = [level.customer_settings, level.profile.settings, None]
        try:
            policy = resolve(pages.defaults, *levels)
        except PolicyError as exc:
            return [], _("A stored setting is invalid: %(problem)s") % {"problem": str(exc)}
        own = level.own
        out = []
        for name, value, source in describe(policy):
            editable = not (name in CUSTOMER_ONLY and level.kind != "customer") and (
                viewer.operator or name not in OPERATOR_ONLY
            )
            out.append(
                Row(
                    name,
                    shown(value),
                    source,
                    as_text(name, own.get(name)),
                    name in own,
                    editable,
                )
            )
        return out, ""

    def render(
        request: Request,
        viewer: Viewer,
        scope: Scope,
        level: Level | None,
        *,
        error: str = "",
        typed: tuple[str, str] = ("", ""),
        status: int = 200,
    ) -> Response:
        table, problem = rows(level, viewer) if level is not None else ([], "")
        if typed[0]:  # a refused value stays in its field, to be corrected
            table = [replace(r, here=typed[1]) if r.name == typed[0] else r for r in table]
        done = request.query_params.get("done", "")
        return pages.render(
            request,
            viewer,
            "settings.html",
            {
                "scope": scope,
                "level": level,
                "rows": table,
                "sources": {k: _(v) for k, v in SOURCES.items()},
                "notice": _(DONE[done]) if done in DONE and not error else "",
                "error": error or problem,
                "action": url(scope, level),
                "customer_url": url(scope),
                "profile_urls": [
                    (p.name, url(scope, None, profile=p.name))
                    for p in (level.profiles if level else ())
                ],
                "find_action": PATH,
                "operator_only": OPERATOR_ONLY,
            },
            status=status,
        )

    async def show(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        if scope.customer_id is None:
            return render(request, viewer, scope, None)
        q = request.query_params
        level = await level_of(scope, q.get("profile"), q.get("user"), q.get("address"))
        return render(request, viewer, scope, level)

    async def change(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        if scope.customer_id is None:
            raise InputError(_("Choose a customer first: its settings are changed, not all."))
        form: FormData = await pages.form(request)

        def field(name: str) -> str:
            value = form.get(name)
            return value if isinstance(value, str) else ""

        level = await level_of(scope, field("profile") or None, field("user") or None)
        key, action = field("key"), field("action")
        if key in OPERATOR_ONLY and not viewer.operator:
            raise Forbidden(
                _("%(key)s is a limit your provider sets; ask your provider to change it.")
                % {"key": key}
            )
        try:
            if action == "set":
                checked = check_setting(key, parse_text(key, field("value")), level.kind)
                stored = list(checked) if isinstance(checked, tuple) else checked
            elif action == "unset":
                if key not in SETTING_NAMES:
                    raise PolicyError(f"unknown setting {key!r}")
                stored = None
            else:
                raise PolicyError(_("Choose to set or to remove the setting."))
            await pages.store.call(change_setting, level.kind, level.target, key, stored)
            log.info(
                "portal: %s: %s %s of %s %s", viewer.username, action, key, level.kind, level.target
            )
        except (PolicyError, TenantsError) as exc:
            level = await level_of(
                scope, level.profile.name if level.profile else None, field("user") or None
            )
            return render(
                request,
                viewer,
                scope,
                level,
                error=str(exc),
                typed=(key, field("value")[:2000]) if action == "set" else ("", ""),
                status=400,
            )
        return pages.redirect(url(scope, level, done=action))

    return [
        Route(PATH, pages.page(show), methods=["GET"]),
        Route(PATH, pages.page(change), methods=["POST"]),
    ]
