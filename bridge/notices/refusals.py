"""What an SMTP failure means for a notice: permanent (fail it now) or temporary (retry).

Pure code. Every exception the SMTP client (aiosmtplib) or the network can raise is
classified here, by type and by reply code, in one place:

* a 5xx reply to EHLO, MAIL, RCPT (for every recipient) or DATA is the relay's verdict
  on this mail: the notice fails at once, with the reply in its error;
* a 4xx reply, a lost or refused connection, a timeout, a TLS failure, a missing
  STARTTLS: the notice is retried with backoff until its lifetime ends;
* a 5xx greeting and a refused AUTH are also temporary (as Postfix treats them): they say
  something about the relay or our credentials, not about the recipient, and the
  operator can fix them while the notice waits.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import aiosmtplib


@dataclass(frozen=True, slots=True)
class Refusal:
    """One failed delivery attempt: the reason (with the relay's reply) and its kind."""

    reason: str
    permanent: bool


def is_permanent_code(code: int) -> bool:
    return 500 <= code <= 599


def _reply(code: int, message: str) -> str:
    return f"{code} {' '.join(str(message).split())}".strip()


def classify(exc: BaseException, where: str) -> Refusal:
    """The meaning of `exc`, raised while talking to `where` (host:port, for the reason)."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        refused = exc.recipients
        replies = "; ".join(f"<{r.recipient}>: {_reply(r.code, r.message)}" for r in refused)
        permanent = bool(refused) and all(is_permanent_code(r.code) for r in refused)
        return Refusal(f"{where} refused the recipient: {replies}", permanent)
    if isinstance(exc, aiosmtplib.SMTPConnectResponseError):
        return Refusal(f"{where} greeted with {_reply(exc.code, exc.message)}", False)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return Refusal(f"{where} refused our login: {_reply(exc.code, exc.message)}", False)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        stage = _STAGES.get(type(exc), "a command")
        return Refusal(
            f"{where} answered {_reply(exc.code, exc.message)} (to {stage})",
            is_permanent_code(exc.code),
        )
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return Refusal(f"{where}: TLS failed: {exc}", False)
    if isinstance(exc, aiosmtplib.SMTPException):
        return Refusal(f"{where}: {exc.message}", False)
    if isinstance(exc, OSError | TimeoutError):
        return Refusal(f"{where}: {exc or type(exc).__name__}", False)
    raise exc  # not a delivery failure: the caller holds the notice with its traceback


_STAGES: dict[type[BaseException], str] = {
    aiosmtplib.SMTPHeloError: "EHLO",
    aiosmtplib.SMTPSenderRefused: "MAIL",
    aiosmtplib.SMTPRecipientRefused: "RCPT",
    aiosmtplib.SMTPDataError: "DATA",
}
