"""The access page: a customer's SMTP AUTH logins, its client networks and TLS/AUTH requirement.

Logins are `mailsms login add/disable/enable` (`tenants.logins`, the password checked
by the same `check_login_password` and stored as an scrypt hash); the networks and the
requirements are `mailsms customer access NAME --network … --require-tls --require-auth`
(`intake.access_store.set_access`, validated by the intake's own `CustomerAccess`). The
page warns as `mailsms config check` does when the rules open the customer to the world
or leave it unable to send. The other access rules (destinations, pumping limits) are
the operator's, on the command line; the page shows them.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bridge.errors import InputError
from bridge.intake.access import CustomerAccess, exposure
from bridge.intake.access_store import get_access, set_access
from bridge.portal.base import PREFIX, NotFound, Pages, Scope
from bridge.portal.i18n import N_
from bridge.portal.queries_settings import LoginItem, find_login, logins
from bridge.portal.viewer import Viewer
from bridge.tenants.admin import AdminError
from bridge.tenants.logins import add_credential, check_login_password, set_credential_enabled

log = logging.getLogger("bridge.portal")

PATH: Final = f"{PREFIX}/access"
_USERNAME = re.compile(r"[A-Za-z0-9._@+-]{1,128}")
DONE: Final = {
    "login-added": N_("The login is added. Its password is stored hashed and cannot be shown."),
    "login-enabled": N_("The login is enabled: AUTH with it works again."),
    "login-disabled": N_("The login is disabled: AUTH with it fails from now on."),
    "rules": N_("The access rules are saved; they apply to the next SMTP session."),
}


def _networks(text: str) -> list[str]:
    return [n.strip() for n in re.split(r"[\s,]+", text) if n.strip()]


def routes(pages: Pages) -> list[BaseRoute]:
    _ = pages._

    def render(
        request: Request,
        viewer: Viewer,
        scope: Scope,
        *,
        items: list[LoginItem],
        access: dict[str, Any] | None,
        error: str = "",
        form: dict[str, str] | None = None,
        status: int = 200,
    ) -> Response:
        rules: CustomerAccess | None = None
        warning = ""
        if access is not None:
            try:
                rules = CustomerAccess.from_settings({"access": access})
            except (ValueError, TypeError) as exc:
                warning = _(
                    "The stored access rules are invalid (%(problem)s); fix them below."
                ) % {"problem": str(exc)}
            else:
                enabled = sum(1 for i in items if i.enabled)
                found = exposure(rules, enabled)
                if found:
                    warning = _("This customer %(warning)s.") % {"warning": found}
        done = request.query_params.get("done", "")
        return pages.render(
            request,
            viewer,
            "access.html",
            {
                "scope": scope,
                "logins": items,
                "rules": rules,
                "networks_text": "\n".join(rules.networks) if rules else "",
                "warning": warning,
                "keep": scope.query_string(),
                "notice": _(DONE[done]) if done in DONE and not error else "",
                "error": error,
                "form": form or {},
            },
            status=status,
        )

    async def state(scope: Scope) -> tuple[list[LoginItem], dict[str, Any] | None]:
        def load(conn: Connection) -> tuple[list[LoginItem], dict[str, Any] | None]:
            items = logins(conn, scope.customer_id)
            access = get_access(conn, scope.customer) if scope.customer else None
            return items, access

        return await pages.store.call(load)

    async def show(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        items, access = await state(scope)
        return render(request, viewer, scope, items=items, access=access)

    def need_customer(scope: Scope) -> str:
        if scope.customer is None:
            raise InputError(_("Choose a customer first: logins and rules belong to one."))
        return scope.customer

    async def add_login(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        customer = need_customer(scope)
        form = await pages.form(request)
        username = str(form.get("username") or "").strip()
        password = str(form.get("password") or "")
        again = str(form.get("password_again") or "")
        try:
            if not _USERNAME.fullmatch(username):
                raise AdminError(
                    _(
                        "The login name needs 1 to 128 letters, digits or . _ @ + - "
                        "(no spaces), e.g. sap-prod."
                    )
                )
            if password != again:
                raise AdminError(_("The two passwords differ; type the same password twice."))
            check_login_password(password)
            await pages.store.call(add_credential, username, customer, password)
        except AdminError as exc:
            items, access = await state(scope)
            return render(
                request,
                viewer,
                scope,
                items=items,
                access=access,
                error=str(exc),
                form={"username": username},
                status=400,
            )
        log.info("portal: %s: login %s added for %s", viewer.username, username, customer)
        return pages.redirect(PATH + scope.query_string(done="login-added"))

    async def toggle_login(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        raw = request.path_params["login_id"]
        login_id = int(raw) if raw.isdigit() and len(raw) < 12 else -1
        item = await pages.store.call(find_login, login_id, scope.customer_id)
        if item is None:
            raise NotFound(_("There is no such login."))
        on = request.url.path.endswith("/enable")
        await pages.store.call(set_credential_enabled, item.username, on)
        log.info(
            "portal: %s: login %s %s",
            viewer.username,
            item.username,
            "enabled" if on else "disabled",
        )
        return pages.redirect(
            PATH + scope.query_string(done="login-enabled" if on else "login-disabled")
        )

    async def save_rules(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        customer = need_customer(scope)
        form = await pages.form(request)
        networks = _networks(str(form.get("networks") or ""))[:1000]
        changes = {
            "networks": networks,
            "require_tls": form.get("require_tls") == "yes",
            "require_auth": form.get("require_auth") == "yes",
        }
        try:
            await pages.store.call(set_access, customer, changes)
        except AdminError as exc:
            items, access = await state(scope)
            return render(
                request,
                viewer,
                scope,
                items=items,
                access=access,
                error=str(exc),
                status=400,
            )
        log.info("portal: %s: access rules of %s: %s", viewer.username, customer, changes)
        return pages.redirect(PATH + scope.query_string(done="rules"))

    return [
        Route(PATH, pages.page(show), methods=["GET"]),
        Route(f"{PATH}/logins", pages.page(add_login), methods=["POST"]),
        Route(f"{PATH}/logins/{{login_id}}/enable", pages.page(toggle_login), methods=["POST"]),
        Route(f"{PATH}/logins/{{login_id}}/disable", pages.page(toggle_login), methods=["POST"]),
        Route(f"{PATH}/rules", pages.page(save_rules), methods=["POST"]),
    ]
