"""Inbound numbers and keywords (view only): what each number of the customer does with an SMS.

Shows what `mailsms inbound list` shows, for the customer's own rows: the sharing mode,
the default actions, each keyword with its aliases and actions, the fallback addresses,
the customer's inbound settings and its keyword lists. Numbers are changed with
`mailsms inbound apply`. A push action is described by method, host, path, format and
authentication kind; its passwords, tokens, secrets, headers and query string are not shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bridge.inbound.config import (
    Action,
    AutoReplyAction,
    ListAction,
    SmppAction,
    Sms2MailAction,
    StopAction,
)
from bridge.portal.base import PREFIX, Pages
from bridge.portal.i18n import N_
from bridge.portal.queries_numbers import inbound_settings, keyword_lists_of, numbers_of
from bridge.portal.viewer import Viewer
from bridge.push.target import PushAction

PATH: Final = f"{PREFIX}/numbers"

SHARING: Final = {
    "dedicated": N_("Dedicated: every SMS to this number is yours."),
    "prefix": N_("Prefix: every SMS to a number starting with this one is yours."),
    "keyword": N_("Shared by keyword: an SMS whose first word is one of your keywords is yours."),
    "dynamic": N_("Shared: an SMS from someone you texted lately (reply window) is yours."),
}


@dataclass(frozen=True, slots=True)
class Described:
    kind: str  # the action's type, for the CSS class and tests
    text: str


def _push_target(url: str) -> str:
    """scheme://host[:port]/path of a push URL: no user info, no query (they may hold keys)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def routes(pages: Pages) -> list[BaseRoute]:
    _ = pages._

    def describe(action: Action) -> Described:
        if isinstance(action, Sms2MailAction):
            if action.mode == "static":
                return Described(
                    "sms2mail",
                    _("Mail to %(to)s") % {"to": ", ".join(action.to) or _("(nobody)")},
                )
            return Described(
                "sms2mail",
                _("Mail to the user who last texted the sender (the reply goes back by mail)"),
            )
        if isinstance(action, AutoReplyAction):
            text = action.text or _("the standard text")
            return Described("autoreply", _("Automatic reply: %(text)s") % {"text": text})
        if isinstance(action, ListAction):
            word = (
                _("Join keyword list %(list)s")
                if action.op == "join"
                else _("Leave keyword list %(list)s")
            )
            return Described("list", word % {"list": action.list})
        if isinstance(action, StopAction):
            if action.type == "stop":
                return Described("stop", _("Opt the sender out (stop list)"))
            return Described("start", _("Opt the sender in again (off the stop list)"))
        if isinstance(action, PushAction):
            return Described(
                "push",
                _("HTTP push: %(method)s %(url)s as %(format)s, authentication: %(auth)s")
                % {
                    "method": action.method,
                    "url": _push_target(action.url),
                    "format": action.format,
                    "auth": action.auth,
                },
            )
        if isinstance(action, SmppAction):
            return Described(
                "smpp", _("To the SMPP account %(id)s (deliver_sm)") % {"id": action.system_id}
            )
        return Described("other", str(action.type))  # pragma: no cover - the union is closed

    async def show(request: Request, viewer: Viewer) -> Response:
        scope = await pages.scope(request, viewer)
        numbers = await pages.store.call(numbers_of, scope.customer_id)
        rows = [
            {
                "number": n.number,
                "customer": n.customer,
                "sharing": n.sharing,
                "sharing_text": _(SHARING.get(n.sharing, n.sharing)),
                "fallback": n.fallback,
                "takes_unmatched": n.takes_unmatched,
                "actions": [describe(a) for a in n.actions],
                "keywords": [
                    {
                        "keyword": k.keyword,
                        "aliases": k.aliases,
                        "actions": [describe(a) for a in k.actions],
                    }
                    for k in n.keywords
                ],
            }
            for n in numbers
        ]
        return pages.render(
            request,
            viewer,
            "numbers.html",
            {
                "scope": scope,
                "numbers": rows,
                "settings": await pages.store.call(inbound_settings, scope.customer_id),
                "keyword_lists": await pages.store.call(keyword_lists_of, scope.customer_id),
            },
        )

    return [Route(PATH, pages.page(show), methods=["GET"])]
