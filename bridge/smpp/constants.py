"""SMPP 3.4 numbers: command ids, command_status values and their temporary/permanent class.

The one table that says whether a command_status is worth retrying lives here
(`TEMPORARY_STATUSES`, after Kannel's `smpp_status_to_smscconn_failure_reason`).
"""

from __future__ import annotations

from typing import Final

# --- command ids -----------------------------------------------------------------------------
GENERIC_NACK: Final = 0x80000000
BIND_RECEIVER: Final = 0x00000001
BIND_TRANSMITTER: Final = 0x00000002
QUERY_SM: Final = 0x00000003
SUBMIT_SM: Final = 0x00000004
DELIVER_SM: Final = 0x00000005
UNBIND: Final = 0x00000006
REPLACE_SM: Final = 0x00000007
CANCEL_SM: Final = 0x00000008
BIND_TRANSCEIVER: Final = 0x00000009
OUTBIND: Final = 0x0000000B
ENQUIRE_LINK: Final = 0x00000015
SUBMIT_MULTI: Final = 0x00000021
ALERT_NOTIFICATION: Final = 0x00000102
DATA_SM: Final = 0x00000103
RESP_BIT: Final = 0x80000000

BIND_RECEIVER_RESP: Final = BIND_RECEIVER | RESP_BIT
BIND_TRANSMITTER_RESP: Final = BIND_TRANSMITTER | RESP_BIT
BIND_TRANSCEIVER_RESP: Final = BIND_TRANSCEIVER | RESP_BIT
SUBMIT_SM_RESP: Final = SUBMIT_SM | RESP_BIT
DELIVER_SM_RESP: Final = DELIVER_SM | RESP_BIT
UNBIND_RESP: Final = UNBIND | RESP_BIT
ENQUIRE_LINK_RESP: Final = ENQUIRE_LINK | RESP_BIT
DATA_SM_RESP: Final = DATA_SM | RESP_BIT

BIND_COMMANDS: Final = frozenset({BIND_RECEIVER, BIND_TRANSMITTER, BIND_TRANSCEIVER})

# --- command_status --------------------------------------------------------------------------
ESME_ROK: Final = 0x00
ESME_RINVMSGLEN: Final = 0x01
ESME_RINVCMDLEN: Final = 0x02
ESME_RINVCMDID: Final = 0x03
ESME_RINVBNDSTS: Final = 0x04
ESME_RALYBND: Final = 0x05
ESME_RINVPRTFLG: Final = 0x06
ESME_RINVREGDLVFLG: Final = 0x07
ESME_RSYSERR: Final = 0x08
ESME_RINVSRCADR: Final = 0x0A
ESME_RINVDSTADR: Final = 0x0B
ESME_RINVMSGID: Final = 0x0C
ESME_RBINDFAIL: Final = 0x0D
ESME_RINVPASWD: Final = 0x0E
ESME_RINVSYSID: Final = 0x0F
ESME_RCANCELFAIL: Final = 0x11
ESME_RREPLACEFAIL: Final = 0x13
ESME_RMSGQFUL: Final = 0x14
ESME_RINVSERTYP: Final = 0x15
ESME_RINVESMCLASS: Final = 0x43
ESME_RSUBMITFAIL: Final = 0x45
ESME_RINVSRCTON: Final = 0x48
ESME_RINVSRCNPI: Final = 0x49
ESME_RINVDSTTON: Final = 0x50
ESME_RINVDSTNPI: Final = 0x51
ESME_RINVSYSTYP: Final = 0x53
ESME_RTHROTTLED: Final = 0x58
ESME_RINVSCHED: Final = 0x61
ESME_RINVEXPIRY: Final = 0x62
ESME_RX_T_APPN: Final = 0x64
ESME_RX_P_APPN: Final = 0x65
ESME_RX_R_APPN: Final = 0x66
ESME_RINVOPTPARSTREAM: Final = 0xC0
ESME_ROPTPARNOTALLWD: Final = 0xC1
ESME_RINVPARLEN: Final = 0xC2
ESME_RMISSINGOPTPARAM: Final = 0xC3
ESME_RINVOPTPARAMVAL: Final = 0xC4
ESME_RDELIVERYFAILURE: Final = 0xFE
ESME_RUNKNOWNERR: Final = 0xFF

STATUS_NAMES: Final[dict[int, str]] = {
    value: name
    for name, value in globals().copy().items()
    if name.startswith("ESME_R") and isinstance(value, int)
}

# Kannel treats these as "try again later"; every other non-zero status is permanent.
TEMPORARY_STATUSES: Final = frozenset(
    {ESME_RMSGQFUL, ESME_RTHROTTLED, ESME_RX_T_APPN, ESME_RSYSERR}
)

# Bind refusals that mean "your credentials or account are wrong": retry slowly.
CREDENTIAL_STATUSES: Final = frozenset({ESME_RINVPASWD, ESME_RINVSYSID, ESME_RBINDFAIL})


def status_name(status: int) -> str:
    """'ESME_RTHROTTLED (0x58)' style text for logs and error reasons."""
    return f"{STATUS_NAMES.get(status, 'status')} (0x{status:02X})"


def is_temporary(status: int) -> bool:
    """True when a non-zero command_status means "retry later" rather than "give up"."""
    return status in TEMPORARY_STATUSES


# --- optional parameter (TLV) tags ------------------------------------------------------------
TLV_SOURCE_PORT: Final = 0x020A
TLV_DESTINATION_PORT: Final = 0x020B
TLV_SAR_MSG_REF_NUM: Final = 0x020C
TLV_SAR_TOTAL_SEGMENTS: Final = 0x020E
TLV_SAR_SEGMENT_SEQNUM: Final = 0x020F
TLV_SC_INTERFACE_VERSION: Final = 0x0210
TLV_RECEIPTED_MESSAGE_ID: Final = 0x001E
TLV_MS_AVAILABILITY_STATUS: Final = 0x0422
TLV_NETWORK_ERROR_CODE: Final = 0x0423
TLV_MESSAGE_PAYLOAD: Final = 0x0424
TLV_DELIVERY_FAILURE_REASON: Final = 0x0425
TLV_MESSAGE_STATE: Final = 0x0427
TLV_CONGESTION_STATE: Final = 0x0428

# --- esm_class bits ---------------------------------------------------------------------------
ESM_UDHI: Final = 0x40
ESM_TYPE_MASK: Final = 0x3C
ESM_TYPE_DELIVERY_RECEIPT: Final = 0x04
ESM_TYPE_INTERMEDIATE_NOTIFICATION: Final = 0x20

# --- TON / NPI ----------------------------------------------------------------------------------
TON_UNKNOWN: Final = 0
TON_INTERNATIONAL: Final = 1
TON_NATIONAL: Final = 2
TON_ALPHANUMERIC: Final = 5
NPI_UNKNOWN: Final = 0
NPI_ISDN: Final = 1

INTERFACE_VERSION: Final = 0x34
