"""What every portal page uses: the session guard, CSRF check, rendering and error pages.

A page is `async def handler(request, viewer) -> Response`, wrapped by `Pages.page()`:
the wrapper finds the session (no session: to the login page), refuses a state-changing
request without this session's CSRF token or from another origin, turns the errors a
page may raise into an HTML page with a sentence saying what to do (never a
traceback), and adds the security headers to every answer.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final
from urllib.parse import quote, urlencode, urlsplit

import jinja2
from sqlalchemy import Connection
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from bridge.db.clock import utcnow
from bridge.db.core import MAX_ROW_ID
from bridge.db.store import Store
from bridge.errors import InputError, StorageUnavailable
from bridge.portal.i18n import N_, Translations
from bridge.portal.sessions import find_session
from bridge.portal.viewer import Viewer
from bridge.tenants.admin import list_customers
from bridge.text.controls import ControlFound, control_in

log = logging.getLogger("bridge.portal")

PREFIX: Final = "/portal"
COOKIE: Final = "mailsms_session"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
# Forms are small; CSV uploads (list members) are the largest thing a page accepts.
MAX_FORM_FIELDS: Final = 1000
MAX_FORM_FILES: Final = 1
MAX_BODY: Final = 25 * 1024 * 1024  # a whole form, a members CSV (20 MB) or an .eml upload

CSP: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

NOT_LOGGED_IN: Final = N_(
    "You are not logged in (or your session ended). Log in and send the form again."
)
NO_CSRF: Final = N_(
    "This form did not come from this portal page, or it has expired. "
    "Reload the page and send it again."
)

PageHandler = Callable[[Request, Viewer], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]


class NotFound(InputError):
    """The object asked for does not exist, or belongs to a customer the viewer may not see."""


class TooLarge(InputError):
    """A posted form larger than the portal takes (MAX_BODY), refused before it is read."""


class Forbidden(InputError):
    """The viewer's role may not do this (e.g. a customer admin on an operator's page)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """The customer a page shows: a customer admin's own; an operator's choice or all."""

    customer_id: int | None  # None: every customer (operators only)
    customer: str | None
    choices: tuple[str, ...]  # the operator's customer chooser (empty for a customer admin)

    def query(self) -> str:
        """The query string that keeps this choice on links (`?customer=acme`, or "")."""
        return (
            "" if self.customer is None or not self.choices else f"customer={quote(self.customer)}"
        )

    def query_string(self, **params: str) -> str:
        """`?customer=…&name=value…`: a link that keeps this choice ("" with nothing to keep)."""
        query = {"customer": self.customer} if self.choices and self.customer else {}
        query.update(params)
        return "?" + urlencode(query) if query else ""


def _customers(conn: Connection) -> list[tuple[int, str]]:
    return [(c.id, c.name) for c in list_customers(conn)]


@dataclass(frozen=True, slots=True)
class NavItem:
    path: str
    label: str
    operator_only: bool = False


# The portal's menu, in order; an entry shows once a page serves its path.
NAV: Final = (
    NavItem(f"{PREFIX}/", "Dashboard"),
    NavItem(f"{PREFIX}/report", "Outbound report"),
    NavItem(f"{PREFIX}/archive", "Report archive"),
    NavItem(f"{PREFIX}/inbound", "Inbound SMS"),
    NavItem(f"{PREFIX}/settings", "Settings"),
    NavItem(f"{PREFIX}/users", "Users"),
    NavItem(f"{PREFIX}/access", "Logins and access"),
    NavItem(f"{PREFIX}/api-keys", "API keys"),
    NavItem(f"{PREFIX}/numbers", "Numbers and keywords"),
    NavItem(f"{PREFIX}/lists", "Distribution lists"),
    NavItem(f"{PREFIX}/stoplist", "Stop list"),
    NavItem(f"{PREFIX}/held", "Held orders"),
    NavItem(f"{PREFIX}/preview", "Preview"),
    NavItem(f"{PREFIX}/accounts", "Portal accounts"),
)


def safe_next(target: str | None) -> str:
    """A redirect target after login: a portal path of this site, never another site."""
    if not target:
        return f"{PREFIX}/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(f"{PREFIX}/"):
        return f"{PREFIX}/"
    if "\\" in target or target.startswith("//"):
        return f"{PREFIX}/"
    return target


def secure_headers(response: Response, *, https: bool) -> Response:
    """The security headers every portal answer carries."""
    h = response.headers
    h.setdefault("Content-Security-Policy", CSP)
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("Referrer-Policy", "same-origin")  # "no-referrer" makes Origin "null"
    h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    h.setdefault("Cache-Control", "no-store")
    if https:
        h.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


class Pages:
    """The toolkit handed to each page module: store, templates, guard, rendering."""

    def __init__(
        self,
        store: Store,
        env: jinja2.Environment,
        translations: Translations,
        *,
        https: bool,
        secure_cookie: bool,
        idle: timedelta,
        lifetime: timedelta,
        defaults: Mapping[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.defaults: Mapping[str, Any] = dict(defaults or {})  # [defaults]: the policy's base
        self.env = env
        self.translations = translations
        self.https = https
        self.secure_cookie = secure_cookie
        self.idle = idle
        self.lifetime = lifetime
        self.paths: set[str] = set()  # the paths pages serve (the menu shows these)

    def _(self, message: str) -> str:
        return self.translations.gettext(message)

    # --- sessions and the guard ------------------------------------------------------------

    async def viewer(self, request: Request) -> Viewer | None:
        token = request.cookies.get(COOKIE)
        if not token or len(token) > 256:
            return None
        return await self.store.call(find_session, token, utcnow(), self.idle)

    def same_origin(self, request: Request) -> bool:
        """A browser's Origin (or Referer) must name this site for a state-changing request."""
        source = request.headers.get("origin") or request.headers.get("referer")
        if not source:
            return True  # not a browser's cross-site form: the CSRF token decides
        host = request.headers.get("host", "")
        return urlsplit(source).netloc == host

    async def form(self, request: Request) -> FormData:
        """The posted form, refused before it is read when it is larger than MAX_BODY."""
        length = request.headers.get("content-length", "")
        if not length.isdigit():  # chunked: its size is unknown (browsers always send one)
            raise TooLarge(self._("Send the form with its length (Content-Length)."))
        if int(length) > MAX_BODY:
            raise TooLarge(
                self._("The upload is larger than %(mb)d MB; split it into smaller files.")
                % {"mb": MAX_BODY // (1024 * 1024)}
            )
        form = await request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)
        self.no_controls(control_in(form.multi_items(), allow_breaks=True))
        return form

    def no_controls(self, found: ControlFound | None) -> None:
        """InputError (a 400 page saying which field) for a control character in a value
        the request sent: it has no place in a name or a filter, and PostgreSQL cannot
        store or compare a NUL."""
        if found is not None:
            raise InputError(
                self._(
                    "%(field)s contains a character that cannot be used (%(code)s at position "
                    "%(position)d); remove it and try again."
                )
                % {"field": found.name, "code": found.code, "position": found.position}
            )

    async def csrf_ok(self, request: Request, expected: str) -> bool:
        given = request.headers.get("x-csrf-token")
        if given is None:
            value = (await self.form(request)).get("csrf")
            given = value if isinstance(value, str) else ""
        return bool(given) and hmac.compare_digest(given.encode(), expected.encode())

    def page(self, handler: PageHandler, *, operator_only: bool = False) -> Endpoint:
        """Wrap a page: session, CSRF, role, error pages, security headers."""

        async def endpoint(request: Request) -> Response:
            viewer: Viewer | None = None
            try:
                viewer = await self.viewer(request)
                if viewer is None:
                    if request.method in SAFE_METHODS:
                        target = quote(
                            request.url.path
                            + ("?" + request.url.query if request.url.query else "")
                        )
                        return self.secure(
                            RedirectResponse(f"{PREFIX}/login?next={target}", status_code=303)
                        )
                    return self.error_page(
                        request,
                        None,
                        401,
                        self._(NOT_LOGGED_IN),
                    )
                if request.method not in SAFE_METHODS and not (
                    self.same_origin(request) and await self.csrf_ok(request, viewer.csrf_token)
                ):
                    log.warning(
                        "portal: %s %s by %s refused: no valid CSRF token",
                        request.method,
                        request.url.path,
                        viewer.username,
                    )
                    return self.error_page(
                        request,
                        viewer,
                        403,
                        self._(NO_CSRF),
                    )
                if any(  # an {id:int} beyond what a database column holds is no row
                    isinstance(v, int) and not 0 <= v < MAX_ROW_ID
                    for v in request.path_params.values()
                ):
                    raise NotFound(self._("Not found."))
                if operator_only and not viewer.operator:
                    raise Forbidden(self._("This page is for operators only."))
                self.no_controls(
                    control_in([*request.query_params.multi_items(), *request.path_params.items()])
                )
                return self.secure(await handler(request, viewer))
            except NotFound as exc:
                return self.error_page(request, viewer, 404, str(exc) or self._("Not found."))
            except Forbidden as exc:
                return self.error_page(request, viewer, 403, str(exc))
            except TooLarge as exc:
                return self.error_page(request, viewer, 413, str(exc))
            except InputError as exc:
                return self.error_page(request, viewer, 400, str(exc))
            except StorageUnavailable as exc:
                log.error(
                    "portal: %s %s: storage unavailable: %s", request.method, request.url.path, exc
                )
                return self.error_page(
                    request,
                    viewer,
                    503,
                    self._("The database is not available at the moment. Try again in a minute."),
                )

        return endpoint

    async def scope(self, request: Request, viewer: Viewer) -> Scope:
        """The customer this request shows: `?customer=<name>` for an operator (absent: all;
        unknown: NotFound); always its own for a customer admin, whatever was asked."""
        if not viewer.operator:
            return Scope(viewer.customer_id, viewer.customer, ())
        customers = await self.store.call(_customers)
        names = tuple(name for _, name in customers)
        wanted = request.query_params.get("customer") or None
        if wanted is None:
            return Scope(None, None, names)
        for cid, name in customers:
            if name == wanted:
                return Scope(cid, name, names)
        raise NotFound(self._("There is no customer of that name."))

    # --- answers ------------------------------------------------------------------------------

    def secure(self, response: Response) -> Response:
        return secure_headers(response, https=self.https)

    def render(
        self,
        request: Request,
        viewer: Viewer | None,
        template: str,
        context: Mapping[str, Any] | None = None,
        *,
        status: int = 200,
    ) -> HTMLResponse:
        """Render `template` (under templates/portal/) with the page's common context."""
        nav = [
            item
            for item in NAV
            if item.path in self.paths
            and (viewer is not None and (viewer.operator or not item.operator_only))
        ]
        body = self.env.get_template(template).render(
            viewer=viewer,
            csrf=viewer.csrf_token if viewer else "",
            nav=nav,
            path=request.url.path,
            prefix=PREFIX,
            **(context or {}),
        )
        response = HTMLResponse(body, status_code=status)
        self.secure(response)
        return response

    def error_page(
        self, request: Request, viewer: Viewer | None, status: int, message: str
    ) -> HTMLResponse:
        return self.render(
            request, viewer, "error.html", {"status": status, "message": message}, status=status
        )

    def redirect(self, path: str) -> Response:
        """After a successful POST: to a page of the portal (303, so a reload does not resend)."""
        return self.secure(RedirectResponse(safe_next(path), status_code=303))
