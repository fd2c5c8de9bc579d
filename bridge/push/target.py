"""Where a push goes: the URL, method, authentication, signature and body format of one target.

The same target serves an inbound number's `push` action and a customer's status push
(both set in the numbers file); every push row keeps its target, so the worker needs
nothing else to deliver it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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
