"""A failure DSN's Status and Diagnostic-Code follow the cause (RFC 3463), row by row."""

from __future__ import annotations

import pytest

from bridge.mt.causes import Cause, FailureCause
from bridge.mt.dispatch import refusal_cause
from bridge.mt.status import OrderStatus, PartState
from bridge.outcomes.dsn_status import (
    OWN_CAUSE,
    RECEIPT_STATE,
    SMPP_STATUS,
    DsnStatus,
    Failure,
    delay_status,
    final_status,
)
from bridge.smpp import constants as c
from bridge.transports.base import TransportPermanentFailure, UnsendableKind
from bridge.transports.smpp import failure_for

FAILED = OrderStatus.FAILED
REFUSED = FailureCause.SMSC_REFUSED

# Every row of the SMPP table, written out: command_status -> Status.
SMPP_EXPECTED = {
    c.ESME_RINVDSTADR: "5.1.1",
    c.ESME_RINVDSTTON: "5.1.3",
    c.ESME_RINVDSTNPI: "5.1.3",
    c.ESME_RINVSRCADR: "5.1.7",
    c.ESME_RINVSRCTON: "5.1.7",
    c.ESME_RINVSRCNPI: "5.1.7",
    c.ESME_RINVMSGLEN: "5.3.4",
    c.ESME_RX_P_APPN: "5.7.1",
    c.ESME_RX_R_APPN: "5.7.1",
    c.ESME_RTHROTTLED: "5.4.5",
    c.ESME_RMSGQFUL: "5.4.5",
    c.ESME_RINVSERTYP: "5.5.4",
    c.ESME_RINVESMCLASS: "5.5.4",
    c.ESME_RINVPRTFLG: "5.5.4",
    c.ESME_RINVREGDLVFLG: "5.5.4",
    c.ESME_RINVSCHED: "5.5.4",
    c.ESME_RINVEXPIRY: "5.5.4",
    c.ESME_RINVOPTPARSTREAM: "5.5.4",
    c.ESME_ROPTPARNOTALLWD: "5.5.4",
    c.ESME_RINVPARLEN: "5.5.4",
    c.ESME_RMISSINGOPTPARAM: "5.5.4",
    c.ESME_RINVOPTPARAMVAL: "5.5.4",
    # no row: other or undefined
    c.ESME_RSUBMITFAIL: "5.0.0",
    c.ESME_RSYSERR: "5.0.0",
    c.ESME_RUNKNOWNERR: "5.0.0",
    c.ESME_RDELIVERYFAILURE: "5.0.0",
    0x0400: "5.0.0",  # a vendor's own code
}

RECEIPT_EXPECTED = {
    PartState.UNDELIVERABLE: ("5.0.0", "stat:UNDELIV"),
    PartState.EXPIRED: ("5.4.7", "stat:EXPIRED"),
    PartState.REJECTED: ("5.7.1", "stat:REJECTD"),
    PartState.DELETED: ("5.0.0", "stat:DELETED"),
}

OWN_EXPECTED = {
    FailureCause.SENDER_INVALID: "5.1.7",
    FailureCause.TEXT_INVALID: "5.6.3",
    FailureCause.VALIDITY_PASSED: "5.4.7",
    FailureCause.RETRIES_EXHAUSTED: "5.4.7",
    FailureCause.NO_ROUTE: "5.4.4",
    FailureCause.REFUSED: "5.7.1",
}


def test_every_row_is_tested() -> None:
    assert set(SMPP_STATUS) <= set(SMPP_EXPECTED)
    assert set(RECEIPT_STATE) == set(RECEIPT_EXPECTED)
    assert set(OWN_CAUSE) == set(OWN_EXPECTED)
    assert set(FailureCause) == {*OWN_EXPECTED, REFUSED}


@pytest.mark.parametrize(("code", "status"), sorted(SMPP_EXPECTED.items()))
def test_smsc_refusal_by_command_status(code: int, status: str) -> None:
    reason = f"smsc1: +491701234567: rejected: {c.status_name(code)}"
    got = final_status(Failure(FAILED, REFUSED, code, reason=reason))
    assert got.status == status
    # names the SMPP error, in words, as a mail admin reads it
    assert got.diagnostic.startswith(f"X-SMPP; submit_sm refused with {c.status_name(code)}: ")
    assert got.diagnostic.split(": ", 1)[1]


def test_unknown_number_reads_as_such() -> None:
    got = final_status(Failure(FAILED, REFUSED, c.ESME_RINVDSTADR))
    assert got == DsnStatus(
        "5.1.1",
        "X-SMPP; submit_sm refused with ESME_RINVDSTADR (0x0B): "
        "the SMSC does not know the recipient's number",
    )


@pytest.mark.parametrize(("state", "expected"), sorted(RECEIPT_EXPECTED.items()))
def test_receipt_state(state: str, expected: tuple[str, str]) -> None:
    status, named = expected
    got = final_status(Failure(OrderStatus.UNDELIVERABLE, part_state=state, network_error="001"))
    assert got.status == status
    assert got.diagnostic.startswith(f"X-SMPP; delivery receipt {named} err:001: ")


def test_a_receipt_without_error_code_names_its_state_alone() -> None:
    got = final_status(Failure(OrderStatus.UNDELIVERABLE, part_state=PartState.EXPIRED))
    assert got == DsnStatus(
        "5.4.7", "X-SMPP; delivery receipt stat:EXPIRED: the phone was not reached in time"
    )


@pytest.mark.parametrize(("cause", "status"), sorted(OWN_EXPECTED.items()))
def test_own_cause(cause: FailureCause, status: str) -> None:
    final = OrderStatus.EXPIRED if status == "5.4.7" else FAILED
    got = final_status(Failure(final, cause, reason="why, in our words"))
    assert got == DsnStatus(status, "X-SMPP; why, in our words")
    # without a reason kept, the table says it
    assert final_status(Failure(final, cause)).diagnostic == f"X-SMPP; {OWN_CAUSE[cause].meaning}"


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        # no cause kept (an order that failed before causes were, a cancelled one)
        (Failure(FAILED, reason="cancelled through the REST API"), "5.0.0"),
        (Failure(OrderStatus.EXPIRED, reason="gave up"), "5.4.7"),
        (Failure(OrderStatus.UNDELIVERABLE), "5.0.0"),
        # a refusal without a command_status
        (Failure(FAILED, REFUSED, None, reason="smsc1: refused"), "5.0.0"),
    ],
)
def test_nothing_more_known(failure: Failure, expected: str) -> None:
    got = final_status(failure)
    assert got.status == expected
    assert got.diagnostic == f"X-SMPP; {failure.reason or failure.status}"


def test_the_cause_of_a_submit_wins_over_a_part_state() -> None:
    failure = Failure(FAILED, REFUSED, c.ESME_RINVMSGLEN, part_state=PartState.EXPIRED)
    assert final_status(failure).status == "5.3.4"


def test_delay_stays_temporary() -> None:
    assert delay_status("smsc1: ESME_RTHROTTLED (0x58)") == DsnStatus(
        "4.4.7", "X-SMPP; deferred: smsc1: ESME_RTHROTTLED (0x58)"
    )
    assert delay_status("").diagnostic == "X-SMPP; deferred: not yet accepted"


def test_every_status_is_a_permanent_rfc3463_code() -> None:
    rows = [*SMPP_STATUS.values(), *OWN_CAUSE.values(), *(r for _, r in RECEIPT_STATE.values())]
    for row in rows:
        klass, subject, detail = row.status.split(".")
        assert klass == "5" and 0 <= int(subject) <= 7 and 0 <= int(detail) <= 999
        assert row.meaning and row.meaning[0].islower() and not row.meaning.endswith(".")


@pytest.mark.parametrize(
    ("failure", "cause"),
    [
        (failure_for(c.ESME_RINVDSTADR, "part 1/1: rejected"), Cause(REFUSED, 0x0B)),
        (
            TransportPermanentFailure("throttled for 90 s", code=0x58, kind="throttled"),
            Cause(REFUSED, 0x58),
        ),
        (
            TransportPermanentFailure("too long", kind=UnsendableKind.SENDER),
            Cause(FailureCause.SENDER_INVALID),
        ),
        (
            TransportPermanentFailure("not GSM-7", kind=UnsendableKind.TEXT),
            Cause(FailureCause.TEXT_INVALID),
        ),
        (TransportPermanentFailure("refused"), Cause(REFUSED, None)),
    ],
)
def test_a_transport_failure_is_kept_as_its_cause(
    failure: TransportPermanentFailure, cause: Cause
) -> None:
    """What dispatch stores for a permanent failure: the command_status, or our own check."""
    assert refusal_cause(failure) == cause
