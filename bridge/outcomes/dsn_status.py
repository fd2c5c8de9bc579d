"""The Status and Diagnostic-Code of a DSN (RFC 3464), from the cause of the failure.

Pure code: `final_status(Failure)` maps what is stored about a failed order — its
final status, the cause its dispatch recorded (`bridge/mt/causes.py`: the SMSC's
command_status for a refused submit_sm, or a failure of our own), and for an order a
receipt failed, that part's state and network error code — to an RFC 3463 enhanced
status code and a Diagnostic-Code that names the SMPP error or the receipt state in
words. SAP shows a text per status code (XS802 recipient unknown, XS806 invalid
recipient address ...) and a mail admin reads the code first, so the code follows the
cause; where nothing more is known it is 5.0.0 (5.4.7 for an expired order), as it
always was.

The class (first digit) is 5 for every row: an order is final. A DELAY DSN's order is
still being retried: `delay_status` says 4.4.7 (delivery time running long).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from bridge.mt.causes import FailureCause
from bridge.mt.status import OrderStatus, PartState
from bridge.smpp import constants as c

DIAGNOSTIC_TYPE: Final = "X-SMPP"
UNKNOWN: Final = "5.0.0"  # RFC 3463 3.1: other or undefined status
EXPIRED: Final = "5.4.7"  # 3.5: delivery time expired


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a table: the enhanced status code and what it means, in words."""

    status: str
    meaning: str


# submit_sm refusals by command_status (SMPP 3.4 section 5.1.3). Every code not here
# gets 5.0.0 with its name. The bridge checked the number's syntax (E.164, with a
# country code) before it submitted, so when the SMSC refuses the destination address
# itself it says that it knows no such subscriber: X.1.1, "the mailbox specified in the
# address does not exist" (SAP: recipient unknown). When it refuses the address's type
# of number or numbering plan, it refuses the form in which the address was written:
# X.1.3, "the destination address was syntactically invalid". A refused source address
# (the sender id) is X.1.7, "the sender's address was syntactically invalid": SMSCs
# answer so for a sender id they do not accept; X.1.8 would say the sender's system
# cannot take return mail, which an SMS sender id is not asked to.
SMPP_STATUS: Final[dict[int, Row]] = {
    c.ESME_RINVDSTADR: Row("5.1.1", "the SMSC does not know the recipient's number"),
    c.ESME_RINVDSTTON: Row("5.1.3", "the SMSC refused the recipient number's type (TON)"),
    c.ESME_RINVDSTNPI: Row("5.1.3", "the SMSC refused the recipient number's plan (NPI)"),
    c.ESME_RINVSRCADR: Row("5.1.7", "the SMSC refused the sender id"),
    c.ESME_RINVSRCTON: Row("5.1.7", "the SMSC refused the sender id's type (TON)"),
    c.ESME_RINVSRCNPI: Row("5.1.7", "the SMSC refused the sender id's plan (NPI)"),
    # X.3.4: "the message is larger than per-message size limit"
    c.ESME_RINVMSGLEN: Row("5.3.4", "the SMSC refused the message's length"),
    # X.7.1: "the sender is not authorized to send to the destination ... refused"
    c.ESME_RX_P_APPN: Row("5.7.1", "the SMSC's application refused the message"),
    c.ESME_RX_R_APPN: Row("5.7.1", "the receiving application refused the message"),
    # final only when a later part stayed throttled (its earlier parts went out);
    # X.4.5: "the mail system was unable to deliver the message because the mail
    # system was congested"
    c.ESME_RTHROTTLED: Row("5.4.5", "the SMSC kept throttling the message's later parts"),
    c.ESME_RMSGQFUL: Row("5.4.5", "the SMSC's queue stayed full for the message's later parts"),
    # A field of our submit_sm refused: this SMSC connection's settings, not the mail.
    # X.5.4: "a valid ... protocol command was issued with invalid arguments"
    **{
        code: Row("5.5.4", "the SMSC refused a field of the submit_sm (check its settings)")
        for code in (
            c.ESME_RINVSERTYP,
            c.ESME_RINVESMCLASS,
            c.ESME_RINVPRTFLG,
            c.ESME_RINVREGDLVFLG,
            c.ESME_RINVSCHED,
            c.ESME_RINVEXPIRY,
            c.ESME_RINVOPTPARSTREAM,
            c.ESME_ROPTPARNOTALLWD,
            c.ESME_RINVPARLEN,
            c.ESME_RMISSINGOPTPARAM,
            c.ESME_RINVOPTPARAMVAL,
        )
    },
}

# A part's final receipt state, with the stat word SMPP receipts carry for it. Network
# error codes (`err:`) differ from network to network: they are named, not mapped.
RECEIPT_STATE: Final[dict[str, tuple[str, Row]]] = {
    PartState.UNDELIVERABLE: ("UNDELIV", Row(UNKNOWN, "the network could not deliver it")),
    # X.4.7: "the message was considered too old by the rejecting system"
    PartState.EXPIRED: ("EXPIRED", Row(EXPIRED, "the phone was not reached in time")),
    # X.7.1: the network refused to deliver it (a barred or blocked subscriber, a filter)
    PartState.REJECTED: ("REJECTD", Row("5.7.1", "the network refused it")),
    PartState.DELETED: ("DELETED", Row(UNKNOWN, "it was deleted at the SMSC")),
}

# Failures of our own that make an order final.
OWN_CAUSE: Final[dict[FailureCause, Row]] = {
    FailureCause.SENDER_INVALID: Row("5.1.7", "the sender id cannot be sent"),
    # X.6.3: "the message content must be transformed to be forwarded but such
    # conversion is not possible"
    FailureCause.TEXT_INVALID: Row("5.6.3", "the text cannot be encoded for the SMSC"),
    FailureCause.VALIDITY_PASSED: Row(EXPIRED, "its validity period ended before it was sent"),
    FailureCause.RETRIES_EXHAUSTED: Row(EXPIRED, "no SMSC took it before the retries ended"),
    # X.4.4: "unable to determine the next hop for the message"
    FailureCause.NO_ROUTE: Row("5.4.4", "no route serves the recipient's number"),
    # X.7.1: "delivery not authorized, message refused"
    FailureCause.REFUSED: Row("5.7.1", "it was refused before it was sent"),
}


@dataclass(frozen=True, slots=True)
class Failure:
    """What is stored about one failed order (the structured cause of its failure)."""

    status: str  # the order's final status
    cause: str = ""  # order.cause (a FailureCause; "" when none was recorded)
    code: int | None = None  # order.cause_code: the SMSC's command_status of a refusal
    part_state: str = ""  # for an order a receipt failed: the failed part's state
    network_error: str = ""  # and that part's error code (the receipt's err:)
    reason: str = ""  # order.error: the reason in words, as the status mail shows it


@dataclass(frozen=True, slots=True)
class DsnStatus:
    """A DSN's Status field and its Diagnostic-Code."""

    status: str
    diagnostic: str


def final_status(failure: Failure) -> DsnStatus:
    """The Status and Diagnostic-Code of the failure DSN of an order."""
    if failure.cause == FailureCause.SMSC_REFUSED and failure.code is not None:
        code = failure.code
        row = SMPP_STATUS.get(code, Row(UNKNOWN, "the SMSC refused the message"))
        return _status(row, f"submit_sm refused with {c.status_name(code)}")
    if failure.cause in OWN_CAUSE:
        own = OWN_CAUSE[FailureCause(failure.cause)]  # our reason names it better, if kept
        return DsnStatus(own.status, f"{DIAGNOSTIC_TYPE}; {failure.reason or own.meaning}")
    if failure.part_state in RECEIPT_STATE:
        stat, row = RECEIPT_STATE[failure.part_state]
        named = f"delivery receipt stat:{stat}"
        if failure.network_error:
            named += f" err:{failure.network_error}"
        return _status(row, named)
    # nothing more is known: a refusal without a command_status, a cancelled order,
    # an order that failed before causes were kept
    status = EXPIRED if failure.status == OrderStatus.EXPIRED else UNKNOWN
    return DsnStatus(status, f"{DIAGNOSTIC_TYPE}; {failure.reason or failure.status}")


def delay_status(reason: str) -> DsnStatus:
    """The Status and Diagnostic-Code of a DELAY DSN: the order is still being retried."""
    return DsnStatus("4.4.7", f"{DIAGNOSTIC_TYPE}; deferred: {reason or 'not yet accepted'}")


def _status(row: Row, named: str) -> DsnStatus:
    return DsnStatus(row.status, f"{DIAGNOSTIC_TYPE}; {named}: {row.meaning}")
