"""The portal's routes: log in and out, its static files, and every page module's routes.

Logging in checks the password off the event loop, counts failures per account (the
account locks for a growing delay, `status.lock_seconds`) and answers a wrong name
exactly like a wrong password. The login form carries a token that must match a
cookie set with it (no login CSRF); the session cookie is HttpOnly, SameSite=Lax,
path /portal, and Secure on HTTPS. The pages themselves live in `bridge/portal/pages/`,
one module per area, each giving its routes to `Portal.routes()` below.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import math
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

from sqlalchemy import Connection
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bridge.db.clock import utcnow
from bridge.db.store import Store
from bridge.errors import StorageUnavailable
from bridge.intake.authguard import AuthGuard, AuthLimits, Lockout
from bridge.intake.lograte import LogLimiter
from bridge.packaged import TEMPLATES
from bridge.portal import accounts
from bridge.portal.base import COOKIE, PREFIX, Pages, TooLarge, safe_next
from bridge.portal.i18n import environment, translations
from bridge.portal.pages import (
    access,
    api_keys,
    archive,
    dashboard,
    held,
    inbound,
    preview,
    report,
    users,
)
from bridge.portal.pages import accounts as accounts_page
from bridge.portal.pages import lists as list_pages
from bridge.portal.pages import numbers as number_pages
from bridge.portal.pages import settings as settings_page
from bridge.portal.pages import stoplist as stoplist_pages
from bridge.portal.sessions import Opened, end_session, open_session, purge_sessions
from bridge.portal.settings import PortalSettings
from bridge.portal.viewer import Viewer
from bridge.reports.settings import ReportSettings
from bridge.smpp.throttle import TokenBucket
from bridge.tenants.logins import verify_password

log = logging.getLogger("bridge.portal")

LOGIN_COOKIE: Final = "mailsms_login"
STATIC: Final = {
    "portal.css": "text/css; charset=utf-8",
    "chart.js": "text/javascript; charset=utf-8",
}


@dataclass(slots=True)
class _Attempt:
    """One login attempt: whether its password check failed (the guard counts it)."""

    failed: bool = False


class Portal:
    """The portal over one store; `routes()` is what the HTTP app mounts."""

    def __init__(
        self,
        store: Store,
        settings: PortalSettings,
        *,
        https: bool,
        reports: ReportSettings | None = None,
        defaults: Mapping[str, Any] | None = None,  # [defaults], for the policy a page shows
    ) -> None:
        tr = translations(settings.language)
        secure = {"auto": https, "yes": True, "no": False}[settings.secure_cookie]
        self.pages = Pages(
            store,
            environment(tr),
            tr,
            https=https,
            secure_cookie=secure,
            idle=timedelta(seconds=settings.session_idle),
            lifetime=timedelta(seconds=settings.session_lifetime),
            defaults=defaults,
        )
        self.store = store
        self.reports = reports or ReportSettings()  # the retention the report page states
        # Password checks per second, over every client (a client's address may be a proxy's)
        self._login_rate = settings.login_rate
        self._checks = TokenBucket(settings.login_rate, burst=2 * settings.login_rate)
        self._logs = LogLimiter(log)  # failed logins: lines a client causes, at a bounded rate
        # Failed logins per address and per name, in this process; no answer is held back
        # (delay 0): an account's own lock already grows with its failures.
        self._guard = AuthGuard(
            AuthLimits(
                max_failures=settings.login_max_failures,
                lockout=settings.login_lockout,
                delay=0.0,
            )
        )
        self._static = {
            name: (TEMPLATES / "portal" / "static" / name).read_bytes()
            for name in STATIC
            if (TEMPLATES / "portal" / "static" / name).is_file()
        }

    def routes(self) -> list[BaseRoute]:
        p = self.pages
        routes: list[BaseRoute] = [
            Route(f"{PREFIX}/login", self.login_form, methods=["GET"]),
            Route(f"{PREFIX}/login", self.login, methods=["POST"]),
            Route(f"{PREFIX}/logout", p.page(self.logout), methods=["POST"]),
            Route(f"{PREFIX}/static/{{name}}", self.static, methods=["GET"]),
            Route(PREFIX, lambda r: p.redirect(f"{PREFIX}/"), methods=["GET"]),
            *dashboard.routes(p),
            *report.routes(p, self.reports.retention_days),
            *held.routes(p),
            *archive.routes(p),
            *preview.routes(p),
            *list_pages.routes(p),
            *stoplist_pages.routes(p),
            *number_pages.routes(p),
            *inbound.routes(p),
            *settings_page.routes(p),
            *users.routes(p),
            *access.routes(p),
            *api_keys.routes(p),
            *accounts_page.routes(p),
        ]
        p.paths.update(r.path for r in routes if isinstance(r, Route))
        return routes

    # --- static files ---------------------------------------------------------------------

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        if name not in self._static:
            return self.pages.secure(Response("not found", status_code=404))
        response = Response(self._static[name], media_type=STATIC[name])
        self.pages.secure(response)
        response.headers["Cache-Control"] = "public, max-age=3600"
        return response

    # --- log in and out -------------------------------------------------------------------

    def _login_page(
        self, request: Request, *, error: str = "", status: int = 200, username: str = ""
    ) -> Response:
        token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
        response = self.pages.render(
            request,
            None,
            "login.html",
            {
                "login_token": token,
                "error": error,
                "username": username,
                "next": safe_next(request.query_params.get("next")),
            },
            status=status,
        )
        response.set_cookie(
            LOGIN_COOKIE,
            token,
            max_age=3600,
            path=f"{PREFIX}/login",
            httponly=True,
            samesite="strict",
            secure=self.pages.secure_cookie,
        )
        return response

    async def login_form(self, request: Request) -> Response:
        return self._login_page(request)

    async def login(self, request: Request) -> Response:
        _ = self.pages._
        try:
            form = await self.pages.form(request)
        except TooLarge as exc:
            return self._login_page(request, error=str(exc), status=413)
        username = str(form.get("username") or "").strip()[:128]
        password = str(form.get("password") or "")[:1024]
        token = str(form.get("login_token") or "")
        expected = request.cookies.get(LOGIN_COOKIE) or ""
        if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            return self._login_page(
                request,
                error=_("The login form has expired. Enter your name and password again."),
                status=403,
                username=username,
            )
        # Failed logins per client address (and per name), as at the SMTP and SMPP doors:
        # a locked address gets no password check at all.
        ip = request.client.host if request.client else "?"
        name = username.casefold()
        lockout = self._guard.begin(ip, name, time.monotonic())
        if lockout is not None:
            return self._locked_out(request, username, ip, lockout)
        attempt = _Attempt()
        try:
            response = await self._check_login(request, username, password, ip, attempt)
        except StorageUnavailable as exc:
            log.error("portal: login of %r: storage unavailable: %s", username, exc)
            response = self._login_page(
                request,
                error=_("The database is not available at the moment. Try again in a minute."),
                status=503,
                username=username,
            )
        finally:
            _, started = self._guard.end(ip, name, time.monotonic(), ok=not attempt.failed)
        if started is not None:  # this failure reached a limit: said once
            who = f"from {ip}" if started.subject == "address" else f"of {username!r}"
            log.warning("portal: logins %s locked for %d s: failed too often", who, started.seconds)
        return response

    def _locked_out(self, request: Request, username: str, ip: str, lockout: Lockout) -> Response:
        _ = self.pages._
        if lockout.subject == "busy":  # the counts could not be had: nothing checked, not now
            log.warning("portal: login of %r from %s refused for now: counts busy", username, ip)
            response = self._login_page(
                request,
                error=_("Logins cannot be checked at the moment. Try again in a minute."),
                status=503,
                username=username,
            )
            response.headers["Retry-After"] = "60"
            return response
        self._logs.event(
            logging.WARNING,
            "login lockout",
            ip,
            "portal: login of %r from %s refused: too many failed logins from this %s",
            username,
            ip,
            lockout.subject,
        )
        wait = max(1, math.ceil(lockout.seconds))
        if lockout.subject == "address":
            error = _(
                "Too many failed logins from your address. Try again in %(seconds)d seconds."
            ) % {"seconds": wait}
        else:
            error = _("Too many failed logins. Try again in %(seconds)d seconds.") % {
                "seconds": wait
            }
        response = self._login_page(request, error=error, status=429, username=username)
        response.headers["Retry-After"] = str(wait)
        return response

    async def _check_login(
        self, request: Request, username: str, password: str, ip: str, attempt: _Attempt
    ) -> Response:
        _ = self.pages._
        now = utcnow()
        account = await self.store.call(accounts.find_account, username) if username else None
        if account is not None and (wait := accounts.locked_for(account, now)):
            log.warning("portal: login of %s from %s refused: locked for %ds", username, ip, wait)
            return self._login_page(
                request,
                error=_("Too many failed logins. Try again in %(seconds)d seconds.")
                % {"seconds": wait},
                status=429,
                username=username,
            )
        if not self._checks.take(time.monotonic()):
            self._logs.event(
                logging.WARNING,
                "login rate",
                "",
                "portal: login of %r from %s refused: more than %g password checks a second",
                username,
                ip,
                self._login_rate,
            )
            return self._login_page(
                request,
                error=_("Too many logins at this moment. Try again in a few seconds."),
                status=429,
                username=username,
            )
        stored = account.password_hash if account is not None else accounts.DUMMY_HASH
        good = await asyncio.to_thread(verify_password, password, stored)
        if account is None or not good or not account.enabled:
            attempt.failed = True  # counted against the address even if the next write fails
            if account is not None:
                await self.store.call(accounts.record_failure, account.id, now)
            self._logs.event(
                logging.WARNING,
                "failed login",
                ip,
                "portal: failed login of %r from %s",
                username,
                ip,
            )
            return self._login_page(
                request,
                error=_("Wrong username or password (or the account is disabled)."),
                status=401,
                username=username,
            )
        lifetime = self.pages.lifetime

        def login(conn: Connection) -> Opened:
            purge_sessions(conn, now, self.pages.idle)  # the ended ones of every account
            accounts.record_success(conn, account.id, now)
            return open_session(conn, account.id, now, lifetime)

        opened = await self.store.call(login)
        log.info("portal: %s logged in from %s", account.username, ip)
        form = await self.pages.form(request)
        response = RedirectResponse(safe_next(str(form.get("next") or "")), status_code=303)
        response.set_cookie(
            COOKIE,
            opened.token,
            path=PREFIX,
            httponly=True,
            samesite="lax",
            secure=self.pages.secure_cookie,
        )
        response.delete_cookie(LOGIN_COOKIE, path=f"{PREFIX}/login")
        return self.pages.secure(response)

    async def logout(self, request: Request, viewer: Viewer) -> Response:
        token = request.cookies.get(COOKIE, "")
        await self.store.call(end_session, token)
        log.info("portal: %s logged out", viewer.username)
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(COOKIE, path=PREFIX)
        return self.pages.secure(response)
