"""The bridge's error tree and the one table of SMTP replies.

Every exception the bridge and dirsync define derives from `BridgeError`, on the branch
that says what kind of failure it is:

    BridgeError
    ├── InputError          a fault of the input (a mail, an address, a file, a command's
    │   │                   argument, a peer's PDU): retrying the same input cannot help,
    │   │                   the message says what to change
    │   └── Reject          refuse inside the SMTP dialogue with a reply from REPLIES
    │                       (5xx: change the mail; 4xx: a limit is reached, retry later)
    ├── ConfigError         invalid settings: the message names the key and what is expected
    ├── TemporaryFailure    our side or a peer cannot do it now: the item is kept and tried
    │                       again (StorageUnavailable → SMTP 4xx, SMPP ESME_RX_T_APPN)
    └── PermanentFailure    the item can never succeed: the order or notice fails

A module's own errors sit on these branches (`RecipientError` and `TextRejected` are
input errors, `smpp.session.SessionError` is temporary, ...). Where one kind of failure
can be either temporary or permanent, the module has a base (`TransportError`,
`DnsFailure`, `DeliveryError`) with one subclass on each branch, and raises the one that
applies, so a caller decides by class. Some input errors also derive from `ValueError`,
because callers (pydantic validators among them) catch them as one. docs/architecture.md
("Errors") lists every class; tests/unit/test_error_tree.py checks that none is left out.

Every SMTP reply the listener sends comes from `REPLIES`: a kind names the situation,
the table gives the code, the enhanced status code (RFC 3463) and a sentence that
tells the sender what to do. Foreign exceptions are translated at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Reply:
    """One SMTP reply: basic code, enhanced status code, text."""

    code: int
    status: str
    text: str

    def render(self, **values: object) -> str:
        """The reply line as aiosmtpd sends it, with `{placeholders}` filled in."""
        text = self.text.format(**values) if values else self.text
        return f"{self.code} {self.status} {text}"


REPLIES: dict[str, Reply] = {
    # success
    "queued": Reply(250, "2.0.0", "Ok: queued as {mail_id}"),
    "sender_ok": Reply(250, "2.1.0", "Sender ok"),
    "recipient_ok": Reply(250, "2.1.5", "Recipient ok"),
    # temporary: the client keeps the mail and retries
    "storage_failure": Reply(
        451, "4.3.0", "Temporary storage failure; the mail was not accepted, please retry later"
    ),
    "internal_error": Reply(
        451, "4.3.0", "Temporary internal error; the mail was not accepted, please retry later"
    ),
    "shutting_down": Reply(
        421, "4.3.2", "Service shutting down; please retry later (nothing of yours was lost)"
    ),
    "too_many_recipients": Reply(
        452, "4.5.3", "Too many recipients; send the remaining recipients in another mail"
    ),
    "queue_full": Reply(
        452, "4.3.1", "Too many SMS are waiting to be sent ({detail}); please retry later"
    ),
    "too_many_connections": Reply(421, "4.7.0", "{detail}; please retry later"),
    "tls_required": Reply(530, "5.7.0", "Must issue a STARTTLS command first"),
    "already_tls": Reply(503, "5.5.1", "TLS is already active; send EHLO, then MAIL"),
    "tls_handshake_failed": Reply(
        421, "4.7.0", "TLS handshake failed; check the client's TLS versions and ciphers"
    ),
    "auth_required": Reply(
        530,
        "5.7.0",
        "Sender <{sender}> must authenticate (STARTTLS, then AUTH with a login of its "
        "account) or send from one of its account's client networks; ask your administrator",
    ),
    "auth_busy": Reply(
        454,
        "4.7.0",
        "Temporary authentication failure: the attempt cannot be counted now; try again in a "
        "minute",
    ),
    "auth_locked": Reply(
        421,
        "4.7.0",
        "Too many failed logins ({detail}); try again in {wait}",
    ),
    "bad_command_bytes": Reply(
        501,
        "5.5.2",
        "The command contains {detail}; send commands, addresses and parameters as "
        "UTF-8 text without control characters",
    ),
    "out_of_sync": Reply(
        554,
        "5.5.0",
        "SMTP synchronisation error: {what}; {fix}",
    ),
    "timeout": Reply(
        421,
        "4.4.2",
        "Nothing came whole within {seconds} s (a command, or a line of the mail); "
        "closing, please send again",
    ),
    "answer_timeout": Reply(
        421,
        "4.3.0",
        "No answer to your {command} within {seconds} s: a fault on this server's side "
        "(logged); closing, please send again later",
    ),
    "too_many_commands": Reply(
        421,
        "4.7.0",
        "Too many commands without a mail ({limit}); closing, please reconnect to send",
    ),
    "auth_requires_tls": Reply(
        538, "5.7.11", "Encryption required for requested authentication mechanism; use STARTTLS"
    ),
    "auth_failed": Reply(
        535, "5.7.8", "Authentication credentials invalid; check user and password"
    ),
    "bad_dsn_param": Reply(
        501, "5.5.4", "Invalid DSN parameter: {detail}; correct it or leave the parameter out"
    ),
    "line_too_long": Reply(
        500,
        "5.5.2",
        "Line too long (RFC 5321 allows 998 characters a line); wrap the text or use "
        "quoted-printable",
    ),
    "command_too_long": Reply(500, "5.5.2", "Command line too long; shorten the command"),
    "bare_line_ending": Reply(
        550,
        "5.5.2",
        "Message refused: it contains a {detail}; lines must end with CRLF (a mail server "
        "that rewrites line endings is needed in between)",
    ),
    "auto_submitted": Reply(
        550,
        "5.7.1",
        "This mail is not sent as SMS because {detail}; automatic replies could loop",
    ),
    "mail_loop": Reply(554, "5.4.6", "Mail loop detected: {detail}; check your mail routing"),
    "client_not_allowed": Reply(
        550,
        "5.7.1",
        "Client address {ip} may not send for <{sender}>; send through your company's mail "
        "server or ask your administrator to allow this network",
    ),
    "not_your_account": Reply(
        550,
        "5.7.1",
        "Sender <{sender}> is not a user of the account you authenticated as; "
        "send from an address of that account",
    ),
    "unsupported_service": Reply(
        550,
        "5.1.3",
        "<{recipient}>: {detail}= addresses are not served here; this bridge sends SMS, "
        "write SMS=+491701234567@{domain} or +491701234567@{domain}",
    ),
    "premium_refused": Reply(
        550,
        "5.7.1",
        "<{recipient}> is a premium-rate or shared-cost number; this account may not send "
        "to such numbers (ask your administrator)",
    ),
    "short_code_refused": Reply(
        550,
        "5.7.1",
        "<{recipient}> is a short code; this account may not send to short codes "
        "(ask your administrator)",
    ),
    "sequential_refused": Reply(
        550,
        "5.7.1",
        "<{recipient}> continues a run of {detail} consecutive numbers (SMS pumping "
        "protection); ask your administrator if these recipients are genuine",
    ),
    "domain_reserved": Reply(
        550,
        "5.7.1",
        "<{recipient}>: the domain {domain} belongs to another account; "
        "use a domain of your own account",
    ),
    # permanent: the client must change something
    "unknown_sender": Reply(
        550,
        "5.7.1",
        "Sender <{sender}> is not allowed to send SMS through this bridge; "
        "ask your administrator to add you as a user",
    ),
    "disabled_sender": Reply(
        550,
        "5.7.1",
        "Sender <{sender}> is disabled for SMS; ask your administrator to enable you",
    ),
    "probe_not_allowed": Reply(
        550,
        "5.7.1",
        "Recipient probes (MAIL FROM:<>) are answered only for a customer's mail servers "
        "or after AUTH, not for client {ip}; ask your administrator to add your network",
    ),
    "null_sender": Reply(
        550,
        "5.7.1",
        "Mail from the null sender cannot become an SMS; send from a user address",
    ),
    "bad_recipient": Reply(
        550,
        "5.1.3",
        "<{recipient}> is not a mobile number; write the number in international "
        "form, e.g. +491701234567@{domain}",
    ),
    "not_mobile": Reply(
        550,
        "5.1.3",
        "<{recipient}> is a {detail}, not a mobile number; SMS reach mobile phones only: "
        "write the recipient's mobile number",
    ),
    "invalid_number": Reply(
        550,
        "5.1.3",
        "<{recipient}> is not a valid phone number ({detail} has a wrong length or prefix); "
        "check the digits",
    ),
    "unknown_domain": Reply(
        550,
        "5.1.2",
        "The domain of <{recipient}> is not a domain this bridge serves; write <number>@{domain}",
    ),
    "bad_domain": Reply(
        550,
        "5.1.3",
        "The domain of <{recipient}> is not a valid domain name ({detail}); check its "
        "spelling, or write it in ASCII (an internationalized label as its xn-- A-label), "
        "e.g. <number>@{domain}",
    ),
    "no_text": Reply(
        550, "5.6.0", "The mail contains no text to send; write the SMS text in the body or subject"
    ),
    "only_signature": Reply(
        550,
        "5.6.0",
        "The mail contains no text to send: {detail}; write the SMS text above the "
        "signature or in the subject",
    ),
    "mime_too_complex": Reply(
        554, "5.6.0", "The mail cannot be read as SMS text ({reason}); send a plain text mail"
    ),
    "unreadable_mail": Reply(
        554,
        "5.6.0",
        "The mail cannot be turned into an SMS ({detail}); send plain text (UTF-8) and "
        "check its X-SMS headers and subject tokens",
    ),
    "bad_encoding": Reply(
        550,
        "5.6.7",
        "The text contains characters that cannot be sent under this account's "
        "encoding policy ({detail}); remove them or ask for UCS-2",
    ),
    "too_long": Reply(552, "5.3.4", "The text is too long for SMS ({detail}); shorten it"),
    "opted_out": Reply(
        550,
        "5.7.1",
        "{recipient} has opted out (texted STOP) and gets no SMS from your company; "
        "they can opt in again by texting START",
    ),
    "message_too_big": Reply(
        552, "5.3.4", "Message too big for this bridge (limit {limit} bytes); shorten it"
    ),
    # settings cascade, per-mail overrides, lists (issue 8)
    "rate_limited": Reply(
        452, "4.7.1", "Sending limit reached ({detail}); send the remaining recipients later"
    ),
    "country_not_allowed": Reply(
        550,
        "5.7.1",
        "<{recipient}>: SMS to country {country} are not allowed for your account; "
        "ask your administrator to allow it (allowed_countries / denied_countries)",
    ),
    "override_refused": Reply(
        550,
        "5.7.1",
        "{origin} sets {setting}, which your account may not change per mail "
        "(allowed: {allowed}); remove it or ask your administrator",
    ),
    "bad_override": Reply(550, "5.6.0", "{origin} is not valid: {detail}; correct it and resend"),
    "unknown_placeholder": Reply(
        550,
        "5.6.0",
        "The text uses the unknown placeholder {{{name}}}; list {list} knows {known}; "
        "correct the placeholder and resend",
    ),
    "empty_list": Reply(
        550, "5.1.1", "The list <{recipient}> has no members; add members, then resend"
    ),
}


def reply(kind: str, **values: object) -> str:
    """The rendered reply line for `kind`; an unknown kind is a programming error."""
    return REPLIES[kind].render(**values)


class BridgeError(Exception):
    """Base of the bridge's own errors."""


class InputError(BridgeError):
    """A fault of the input: the same input fails again; the message says what to change."""


class Reject(InputError):
    """Refuse inside the SMTP dialogue with the reply of `kind`."""

    def __init__(self, kind: str, **values: object) -> None:
        super().__init__(kind)
        if kind not in REPLIES:
            raise KeyError(f"no SMTP reply for kind {kind!r}")
        self.kind = kind
        self.values = values

    @property
    def reply(self) -> str:
        return REPLIES[self.kind].render(**self.values)


class TemporaryFailure(BridgeError):
    """Our side or a peer cannot do it now; the item is kept and tried again."""


class PermanentFailure(BridgeError):
    """The item can never succeed."""


class StorageUnavailable(TemporaryFailure):
    """The database could not be reached or refused the write."""


class StorageUnreachable(StorageUnavailable):
    """The database could not be reached (connection lost, no server taking writes during a
    failover, SQLite locked): the same write may well succeed when tried again."""


class ConfigError(BridgeError):
    """Invalid settings: the message names the key and what is expected."""
