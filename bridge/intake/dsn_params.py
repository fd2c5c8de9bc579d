"""RFC 3461 DSN parameters: NOTIFY and ORCPT on RCPT, RET and ENVID on MAIL, kept as received.

Pure code. aiosmtpd upper-cases and rejects these parameters, so the listener takes
them out of the raw command argument first (`split_params`). The values are stored
exactly as the client wrote them; ENVID and ORCPT are xtext-decoded (RFC 3461 section 4)
when they are echoed back in the DSN.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.errors import InputError

NOTIFY_VALUES = frozenset({"SUCCESS", "FAILURE", "DELAY"})


class DsnParamError(InputError, ValueError):
    """A DSN parameter is malformed; the message says which and how."""


@dataclass(frozen=True, slots=True)
class MailDsn:
    ret: str | None = None  # "FULL" or "HDRS"
    envid: str | None = None  # exactly as received (xtext); decode with xtext_decode


@dataclass(frozen=True, slots=True)
class RcptDsn:
    notify: tuple[str, ...] | None = (
        None  # None = not given; ("NEVER",) or a subset of NOTIFY_VALUES
    )
    orcpt: str | None = None  # "rfc822;addr" exactly as received (xtext)


def split_params(arg: str, names: frozenset[str]) -> tuple[str, dict[str, str]]:
    """Remove `NAME=value` parameters in `names` (any case) from a MAIL/RCPT argument.

    Returns the argument without them (for aiosmtpd) and the removed values, verbatim.
    """
    head, sep, tail = arg.partition(">")
    if not sep:
        return arg, {}
    kept: list[str] = []
    found: dict[str, str] = {}
    for token in tail.split():
        key, eq, value = token.partition("=")
        if eq and key.upper() in names:
            found[key.upper()] = value
        else:
            kept.append(token)
    return head + sep + ("" if not kept else " " + " ".join(kept)), found


def parse_mail_dsn(found: dict[str, str]) -> MailDsn:
    ret = found.get("RET")
    if ret is not None and ret.upper() not in ("FULL", "HDRS"):
        raise DsnParamError("RET must be FULL or HDRS")
    envid = found.get("ENVID")
    if envid is not None and (not envid or len(envid) > 100):
        raise DsnParamError("ENVID must be 1 to 100 characters")
    return MailDsn(ret=ret.upper() if ret else None, envid=envid)


def parse_rcpt_dsn(found: dict[str, str]) -> RcptDsn:
    notify: tuple[str, ...] | None = None
    if "NOTIFY" in found:
        values = tuple(v.strip().upper() for v in found["NOTIFY"].split(","))
        if values == ("NEVER",) or (
            values and all(v in NOTIFY_VALUES for v in values) and len(set(values)) == len(values)
        ):
            notify = values
        else:
            raise DsnParamError(
                "NOTIFY must be NEVER or a comma-separated list of SUCCESS, FAILURE, DELAY"
            )
    orcpt = found.get("ORCPT")
    if orcpt is not None:
        addr_type, semi, addr = orcpt.partition(";")
        if not semi or not addr_type or not addr:
            raise DsnParamError("ORCPT must be of the form rfc822;address")
    return RcptDsn(notify=notify, orcpt=orcpt)


def wants_dsn(
    notify: tuple[str, ...] | None, event: str, default: tuple[str, ...] = ("FAILURE",)
) -> bool:
    """Does a recipient with this NOTIFY want a DSN for `event` (SUCCESS, FAILURE or DELAY)?"""
    values = default if notify is None else notify
    return event in values
