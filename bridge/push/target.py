"""Where a push goes: the URL, method, authentication, signature and body format of one target.

The same target serves an inbound number's `push` action and a customer's status push
(both set in the numbers file); every push row keeps its target, so the worker needs
nothing else to deliver it.

A target is checked when the numbers file is loaded, so a fault in it is named there and
not discovered by every push: the URL's form (the SSRF guard's rules that need no DNS),
header names that are HTTP tokens, values and credentials without control characters
(a line break would end the header early), no header the bridge writes itself, and a
basic-auth user name without `:`. Targets read back from the numbers tables pass the
context `STORED` and are taken as they were stored (the push worker checks each push's
target again and gives up on one that fails, with the reason).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from bridge.push.url import PushBlocked, parse_target

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 5.1: a field name
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # RFC 9110 5.5: no CTL but HTAB in a value
# Headers the bridge writes on every push: a customer's would be overwritten or clash.
_OWN = frozenset(
    {"host", "content-type", "content-length", "transfer-encoding", "connection", "user-agent"}
)
STORED = {"stored": True}  # validation context: read back from the database, not checked
_NAME_RULE = "a header name is letters, digits and !#$%&'*+-.^_`|~"


class PushAction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["push"] = "push"
    url: str
    method: Literal["POST", "PUT"] = "POST"
    auth: Literal["none", "basic", "bearer", "hmac"] = "none"
    username: str = ""
    password: str = ""
    token: str = ""
    secret: str = ""
    signature_header: str = "X-Mailsms-Signature"
    headers: dict[str, str] = Field(default_factory=dict)
    format: Literal["json", "xml", "kv"] = "json"

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> PushAction:
        if info.context and info.context.get("stored"):
            return self
        try:
            parse_target(self.url, allow_http=True)  # http is judged by [push] allow_http
        except PushBlocked as exc:
            raise ValueError(f"url {self.url!r}: {exc}") from None
        if not _TOKEN.fullmatch(self.signature_header):
            raise ValueError(f"signature_header {self.signature_header!r}: {_NAME_RULE}")
        for name, value in self.headers.items():
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"header {name!r}: {_NAME_RULE}")
            lower = name.lower()
            if lower in _OWN:
                raise ValueError(f"header {name!r}: the bridge sets it on every push; remove it")
            if (lower == "authorization" and self.auth != "none") or (
                self.auth == "hmac" and lower == self.signature_header.lower()
            ):
                raise ValueError(
                    f"header {name!r}: the bridge sets it for auth = {self.auth!r}; remove it"
                )
            if _CONTROL.search(value):
                raise ValueError(
                    f"header {name!r}: the value has a line break or control character"
                )
        for key in ("username", "password", "token", "secret"):
            if _CONTROL.search(getattr(self, key)):
                raise ValueError(f"{key}: has a line break or control character")
        if ":" in self.username:
            raise ValueError("username: may not contain ':' (basic authentication, RFC 7617)")
        return self
