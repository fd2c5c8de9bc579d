"""The portal accounts page: who may log in to the portal.

An operator manages every account (operators and customer admins of any customer).
A customer admin sees and manages its own customer's admins only: it adds customer
admins of its customer (never an operator), disables, enables them and sets their
password; another customer's account, or an operator's, is "not found" to it. Nobody
disables their own account here (the last admin would lock the customer out). The
functions are `mailsms portal-account`'s (`portal.accounts`).
"""

from __future__ import annotations

import logging
from typing import Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bridge.portal.accounts import (
    AccountRow,
    add_account,
    list_accounts,
    set_enabled,
    set_password,
)
from bridge.portal.base import PREFIX, Forbidden, NotFound, Pages, Scope
from bridge.portal.i18n import N_
from bridge.portal.status import Role
from bridge.portal.viewer import Viewer
from bridge.tenants.admin import AdminError

log = logging.getLogger("bridge.portal")

PATH: Final = f"{PREFIX}/accounts"
DONE: Final = {
    "added": N_("The account is added; it can log in now."),
    "enabled": N_("The account is enabled."),
    "disabled": N_("The account is disabled and its sessions have ended."),
    "password": N_("The password is set; the account's sessions have ended."),
}


def routes(pages: Pages) -> list[BaseRoute]:
    _ = pages._

    async def visible(viewer: Viewer, scope: Scope) -> list[AccountRow]:
        """The accounts this viewer may see: an operator's choice, an admin's customer's."""
        if viewer.operator:
            return await pages.store.call(list_accounts, scope.customer_id)
        assert viewer.customer_id is not None
        return await pages.store.call(list_accounts, viewer.customer_id)

    async def render(
        request: Request,
        viewer: Viewer,
        scope: Scope,
        *,
        error: str = "",
        form: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        done = request.query_params.get("done", "")
        return pages.render(
            request,
            viewer,
            "accounts.html",
            {
                "scope": scope,
                "accounts": await visible(viewer, scope),
                "keep": scope.query_string(),
                "notice": _(DONE[done]) if done in DONE and not error else "",
                "error": error,
                "form": form or {},
                "customers": scope.choices,
            },
            status=status,
        )

    async def show(request: Request, viewer: Viewer) -> Response:
        return await render(request, viewer, await pages.scope(request, viewer))

    async def add(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        form = await pages.form(request)
        username = str(form.get("username") or "").strip()
        password = str(form.get("password") or "")
        again = str(form.get("password_again") or "")
        role_text = str(form.get("role") or Role.CUSTOMER_ADMIN.value)
        if viewer.operator:
            customer: str | None = str(form.get("customer") or "").strip() or None
        else:
            customer = viewer.customer  # its own, whatever the form says
            if role_text != Role.CUSTOMER_ADMIN.value:
                raise Forbidden(_("Only an operator can add an operator account."))
        try:
            role = Role(role_text)
        except ValueError:
            role = None
        try:
            if role is None:
                raise AdminError(_("Choose the role: operator or customer admin."))
            if password != again:
                raise AdminError(_("The two passwords differ; type the same password twice."))
            await pages.store.call(add_account, username, role, customer, password)
        except AdminError as exc:
            return await render(
                request,
                viewer,
                scope,
                error=str(exc),
                form={"username": username, "role": role_text, "customer": customer or ""},
                status=400,
            )
        log.info("portal: %s: portal account %s (%s) added", viewer.username, username, role_text)
        return pages.redirect(PATH + scope.query_string(done="added"))

    async def target(request: Request, viewer: Viewer) -> tuple[Scope, AccountRow]:
        scope = await pages.scope(request, viewer)
        raw = request.path_params["account_id"]
        account_id = int(raw) if raw.isdigit() and len(raw) < 12 else -1
        found = next((a for a in await visible(viewer, scope) if a.id == account_id), None)
        if found is None:
            raise NotFound(_("There is no such portal account."))
        return scope, found

    async def toggle(request: Request, viewer: Viewer) -> Response:
        scope, account = await target(request, viewer)
        on = request.url.path.endswith("/enable")
        if not on and account.id == viewer.account_id:
            raise Forbidden(_("You cannot disable your own account; another administrator can."))
        await pages.store.call(set_enabled, account.username, on)
        log.info(
            "portal: %s: portal account %s %s",
            viewer.username,
            account.username,
            "enabled" if on else "disabled",
        )
        return pages.redirect(PATH + scope.query_string(done="enabled" if on else "disabled"))

    async def password(request: Request, viewer: Viewer) -> Response:
        scope, account = await target(request, viewer)
        form = await pages.form(request)
        new = str(form.get("password") or "")
        try:
            if new != str(form.get("password_again") or ""):
                raise AdminError(_("The two passwords differ; type the same password twice."))
            await pages.store.call(set_password, account.username, new)
        except AdminError as exc:
            return await render(request, viewer, scope, error=str(exc), status=400)
        log.info("portal: %s: password of portal account %s set", viewer.username, account.username)
        return pages.redirect(PATH + scope.query_string(done="password"))

    return [
        Route(PATH, pages.page(show), methods=["GET"]),
        Route(PATH, pages.page(add), methods=["POST"]),
        Route(f"{PATH}/{{account_id}}/enable", pages.page(toggle), methods=["POST"]),
        Route(f"{PATH}/{{account_id}}/disable", pages.page(toggle), methods=["POST"]),
        Route(f"{PATH}/{{account_id}}/password", pages.page(password), methods=["POST"]),
    ]
