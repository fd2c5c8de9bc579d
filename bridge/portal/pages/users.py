"""The users pages: list and search a customer's users, enable or disable one, its aliases.

Enabling and disabling is `mailsms user enable/disable` (`tenants.admin.set_user_enabled`);
aliases are the other envelope addresses a user may send from (`tenants.admin.add_alias`,
checked like every address). A user that comes from the directory (dirsync) gets its
aliases from there, so the page does not change them. Profiles are assigned by the
tenants file or the directory, as on the command line; the page shows them.
"""

from __future__ import annotations

import logging
from typing import Final
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bridge.portal.base import PREFIX, NotFound, Pages, Scope
from bridge.portal.i18n import N_
from bridge.portal.queries_settings import UserDetail, find_user, find_users
from bridge.portal.viewer import Viewer
from bridge.tenants.admin import AdminError, add_alias, remove_alias, set_user_enabled

log = logging.getLogger("bridge.portal")

PATH: Final = f"{PREFIX}/users"
PAGE_SIZE: Final = 50
DONE: Final = {
    "enabled": N_("The user may send SMS again."),
    "disabled": N_("The user may no longer send SMS; its history stays."),
    "alias-added": N_("The alias is added: mail from it counts as this user's."),
    "alias-removed": N_("The alias is removed."),
}
# Where a user row came from (`user.origin`), in words for the pages.
ORIGINS: Final = {
    "manual": N_("added by hand (command line or portal)"),
    "dirsync": N_("from the directory (dirsync)"),
    "tenants": N_("from the tenants file"),
    "demo": N_("the demo's user"),
}


def routes(pages: Pages) -> list[BaseRoute]:
    _ = pages._

    async def user_of(request: Request, viewer: Viewer) -> tuple[Scope, UserDetail]:
        scope = await pages.scope(request, viewer)
        raw = request.path_params["user_id"]
        user_id = int(raw) if raw.isdigit() and len(raw) < 12 else -1
        user = await pages.store.call(find_user, user_id, scope.customer_id)
        if user is None:
            raise NotFound(_("There is no such user."))
        return scope, user

    async def listing(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        search = (request.query_params.get("q") or "").strip()[:200]
        raw_page = request.query_params.get("page") or "1"
        page = int(raw_page) if raw_page.isdigit() and 0 < len(raw_page) < 7 else 1
        page = max(page, 1)
        found = await pages.store.call(
            find_users, scope.customer_id, search, (page - 1) * PAGE_SIZE, PAGE_SIZE + 1
        )
        more = len(found) > PAGE_SIZE
        nav = {"q": search} if search else {}
        return pages.render(
            request,
            viewer,
            "users.html",
            {
                "scope": scope,
                "users": found[:PAGE_SIZE],
                "origins": {k: _(v) for k, v in ORIGINS.items()},
                "search": search,
                "keep": scope.query_string(),
                "prev_url": PATH + scope.query_string(**nav, page=str(page - 1))
                if page > 1
                else None,
                "next_url": PATH + scope.query_string(**nav, page=str(page + 1)) if more else None,
            },
        )

    def detail_page(
        request: Request,
        viewer: Viewer,
        scope: Scope,
        user: UserDetail,
        *,
        error: str = "",
        status: int = 200,
    ) -> Response:
        done = request.query_params.get("done", "")
        settings_query = {"user": str(user.id)}
        if viewer.operator:
            settings_query["customer"] = user.customer
        return pages.render(
            request,
            viewer,
            "users_detail.html",
            {
                "scope": scope,
                "user": user,
                "origins": {k: _(v) for k, v in ORIGINS.items()},
                "keep": scope.query_string(),
                "settings_url": f"{PREFIX}/settings?{urlencode(settings_query)}",
                "notice": _(DONE[done]) if done in DONE and not error else "",
                "error": error,
            },
            status=status,
        )

    async def detail(request: Request, viewer: Viewer) -> Response:
        scope, user = await user_of(request, viewer)
        return detail_page(request, viewer, scope, user)

    async def enable(request: Request, viewer: Viewer) -> Response:
        scope, user = await user_of(request, viewer)
        on = request.url.path.endswith("/enable")
        await pages.store.call(set_user_enabled, user.address, on)
        log.info(
            "portal: %s: user %s %s", viewer.username, user.address, "enabled" if on else "disabled"
        )
        return pages.redirect(
            f"{PATH}/{user.id}{scope.query_string(done='enabled' if on else 'disabled')}"
        )

    async def alias(request: Request, viewer: Viewer) -> Response:
        scope, user = await user_of(request, viewer)
        form = await pages.form(request)
        value = form.get("address")
        address = value.strip()[:320] if isinstance(value, str) else ""
        adding = request.url.path.endswith("/add")
        try:
            if user.origin == "dirsync":
                raise AdminError(
                    _(
                        "This user comes from the directory: its aliases come from there. "
                        "Change them in the directory; the next sync brings them here."
                    )
                )
            if not address:
                raise AdminError(_("Enter the address, e.g. anna.alpha@example.com."))
            if adding:
                address = await pages.store.call(add_alias, user.id, address)
            else:
                await pages.store.call(remove_alias, user.id, address)
        except AdminError as exc:
            return detail_page(request, viewer, scope, user, error=str(exc), status=400)
        log.info(
            "portal: %s: alias %s of %s %s",
            viewer.username,
            address,
            user.address,
            "added" if adding else "removed",
        )
        done = "alias-added" if adding else "alias-removed"
        return pages.redirect(f"{PATH}/{user.id}{scope.query_string(done=done)}")

    return [
        Route(PATH, pages.page(listing), methods=["GET"]),
        Route(f"{PATH}/{{user_id}}", pages.page(detail), methods=["GET"]),
        Route(f"{PATH}/{{user_id}}/enable", pages.page(enable), methods=["POST"]),
        Route(f"{PATH}/{{user_id}}/disable", pages.page(enable), methods=["POST"]),
        Route(f"{PATH}/{{user_id}}/aliases/add", pages.page(alias), methods=["POST"]),
        Route(f"{PATH}/{{user_id}}/aliases/remove", pages.page(alias), methods=["POST"]),
    ]
