"""The preview: a pasted text or an uploaded .eml → parts, encoding, replaced characters.

The same text engine and the same context as the preview mail (`mailsms preview`,
`bridge/intake/sms_plan.preview_context`), under the policy of the page's customer
(the defaults, then the customer's own settings); nothing is sent or stored.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bridge.api.messages import MAX_TEXT, as_mail
from bridge.intake.sms_plan import preview_context
from bridge.portal.base import PREFIX, Pages, Scope
from bridge.portal.viewer import Viewer
from bridge.tenants.admin import list_customers
from bridge.tenants.policy import Policy, PolicyError, resolve
from bridge.text.errors import MimeTooComplex
from bridge.text.mime import extract

log = logging.getLogger("bridge.portal")

PATH: Final = f"{PREFIX}/preview"
MAX_EML: Final = 1_048_576  # the intake's default data_size_limit
SHOWN_NUMBER: Final = "+491701234567"  # the preview mail's default recipient


def _customer_settings(conn: Any, customer_id: int) -> dict[str, Any]:
    for c in list_customers(conn):
        if c.id == customer_id:
            return dict(c.settings)
    return {}


def routes(pages: Pages) -> list[BaseRoute]:
    _ = pages._

    async def policy_for(scope: Scope) -> Policy:
        own = (
            {}
            if scope.customer_id is None
            else await pages.store.call(_customer_settings, scope.customer_id)
        )
        try:
            return resolve(pages.defaults, own)
        except PolicyError as exc:
            raise PolicyError(
                _("The customer's settings are not valid: %(error)s") % {"error": str(exc)}
            ) from exc

    def page(
        request: Request,
        viewer: Viewer,
        scope: Scope,
        *,
        text: str = "",
        shown: dict[str, Any] | None = None,
        error: str = "",
        status: int = 200,
    ) -> Response:
        return pages.render(
            request,
            viewer,
            "preview.html",
            {
                "scope": scope,
                "text": text,
                "shown": shown,
                "error": error,
                "action": PATH + ("?" + scope.query() if scope.query() else ""),
                "max_text": MAX_TEXT,
            },
            status=status,
        )

    async def form(request: Request, viewer: Viewer) -> Response:
        return page(request, viewer, await pages.scope(request, viewer))

    async def show(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        data = await pages.form(request)
        text = str(data.get("text") or "")
        upload = data.get("eml")
        raw = b""
        if isinstance(upload, UploadFile) and upload.filename:
            raw = await upload.read(MAX_EML + 1)
            if len(raw) > MAX_EML:
                return page(
                    request,
                    viewer,
                    scope,
                    text=text,
                    error=_("The mail file is larger than 1 MB. Upload a smaller .eml file."),
                    status=400,
                )
        if not raw and not text.strip():
            return page(
                request,
                viewer,
                scope,
                error=_("Paste a text or choose an .eml file, then press Preview."),
                status=400,
            )
        if not raw and len(text) > MAX_TEXT:
            return page(
                request,
                viewer,
                scope,
                text=text[:MAX_TEXT],
                error=_("The text is longer than %(max)d characters. Shorten it.")
                % {"max": MAX_TEXT},
                status=400,
            )
        policy = await policy_for(scope)
        try:
            if raw:
                mail = extract(raw)
            else:
                raw, mail = as_mail(text.replace("\r\n", "\n"))
            shown = preview_context(raw, policy, SHOWN_NUMBER, mail)
        except MimeTooComplex as exc:
            return page(
                request,
                viewer,
                scope,
                text=text,
                error=_("The bridge would refuse this mail (554 5.6.0): %(reason)s")
                % {"reason": str(exc)},
                status=400,
            )
        except (ValueError, LookupError) as exc:  # what a malformed upload can raise
            log.info("portal: preview of an unreadable mail file: %s", exc)
            return page(
                request,
                viewer,
                scope,
                text=text,
                error=_("This file is not a mail the bridge can read. Upload an .eml file."),
                status=400,
            )
        return page(request, viewer, scope, text=text, shown=shown)

    return [
        Route(PATH, pages.page(form), methods=["GET"]),
        Route(PATH, pages.page(show), methods=["POST"]),
    ]
