"""Errors the text engine raises; the intake maps each `kind` to one SMTP reply."""

from __future__ import annotations

from typing import Literal

from bridge.errors import InputError

RejectKind = Literal["bad_encoding", "too_long", "no_text", "only_signature"]


class TextRejected(InputError):
    """The mail's text cannot become an SMS under the given policy.

    `kind` is one of:
      * "bad_encoding" – characters outside GSM-7 under the `reject` policy (550 5.6.7);
      * "too_long"     – more parts than allowed under the `reject` overflow (552 5.3.4);
      * "no_text"      – nothing left to send (550 5.6.0);
      * "only_signature" – the body was only a signature or sign-off and there is no subject
                         to send instead (550 5.6.0).
    `detail` is a sentence for the sender that says what to change.
    """

    def __init__(self, kind: RejectKind, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind: RejectKind = kind
        self.detail = detail


class MimeTooComplex(InputError):
    """The mail exceeds a structural limit (nesting depth, number of parts, size): 554 5.6.0."""

    kind: Literal["too_complex"] = "too_complex"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = reason
