"""The API keys page: list a customer's REST API keys, create one (shown once), revoke one.

The same functions as `mailsms api-key add/list/revoke` (`api.keys`): the key is made
and hashed there, and the portal shows the token on the answer to the creating POST
only (no redirect, nothing stored, `Cache-Control: no-store`); no page shows it again.
"""

from __future__ import annotations

import logging
from typing import Final

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bridge.api.keys import KeyRow, add_key, list_keys, revoke_key
from bridge.errors import InputError
from bridge.portal.base import PREFIX, NotFound, Pages, Scope
from bridge.portal.i18n import N_
from bridge.portal.viewer import Viewer
from bridge.tenants.admin import AdminError, UserRow, list_users

log = logging.getLogger("bridge.portal")

PATH: Final = f"{PREFIX}/api-keys"
DONE: Final = {"revoked": N_("The key is revoked: requests with it are refused from now on.")}


def _networks(text: str) -> list[str]:
    return [n.strip() for n in text.replace(",", " ").split() if n.strip()]


def routes(pages: Pages) -> list[BaseRoute]:
    _ = pages._

    async def state(scope: Scope) -> tuple[list[KeyRow], list[UserRow]]:
        def load(conn: Connection) -> tuple[list[KeyRow], list[UserRow]]:
            keys = list_keys(conn, scope.customer)
            users = list_users(conn, scope.customer) if scope.customer else []
            return keys, [u for u in users if u.enabled]

        return await pages.store.call(load)

    async def render(
        request: Request,
        viewer: Viewer,
        scope: Scope,
        *,
        error: str = "",
        form: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        keys, users = await state(scope)
        done = request.query_params.get("done", "")
        return pages.render(
            request,
            viewer,
            "api_keys.html",
            {
                "scope": scope,
                "keys": keys,
                "users": users,
                "keep": scope.query_string(),
                "notice": _(DONE[done]) if done in DONE and not error else "",
                "error": error,
                "form": form or {},
            },
            status=status,
        )

    async def show(request: Request, viewer: Viewer) -> Response:
        return await render(request, viewer, await pages.scope(request, viewer))

    async def create(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        if scope.customer is None:
            raise InputError(_("Choose a customer first: a key belongs to one."))
        customer = scope.customer
        form = await pages.form(request)
        name = str(form.get("name") or "").strip()
        user = str(form.get("user") or "").strip() or None
        networks = _networks(str(form.get("networks") or ""))[:100]
        try:
            token = await pages.store.call(
                lambda conn: add_key(conn, customer, name, user, networks)
            )
        except AdminError as exc:
            return await render(
                request,
                viewer,
                scope,
                error=str(exc),
                form={"name": name, "user": user or "", "networks": " ".join(networks)},
                status=400,
            )
        log.info("portal: %s: API key %r of %s created", viewer.username, name, customer)
        return pages.render(
            request,
            viewer,
            "api_keys_created.html",
            {
                "scope": scope,
                "name": name,
                "customer": customer,
                "token": token,
                "keep": scope.query_string(),
            },
        )

    async def revoke(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        key_id = request.path_params["key_id"]
        keys, _users = await state(scope)
        found = next((k for k in keys if k.key_id == key_id and k.revoked_at is None), None)
        if found is None:
            raise NotFound(_("There is no active API key with that id."))
        await pages.store.call(revoke_key, found.customer, found.name)
        log.info(
            "portal: %s: API key %r of %s revoked", viewer.username, found.name, found.customer
        )
        return pages.redirect(PATH + scope.query_string(done="revoked"))

    return [
        Route(PATH, pages.page(show), methods=["GET"]),
        Route(PATH, pages.page(create), methods=["POST"]),
        Route(f"{PATH}/{{key_id}}/revoke", pages.page(revoke), methods=["POST"]),
    ]
