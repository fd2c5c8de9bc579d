"""SMPP 3.4 PDU value types: one frozen dataclass per PDU we speak, TLVs, and the `Pdu` union.

The codec (bytes <-> these types) is `bridge.smpp.pdu`, which re-exports everything here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from bridge.smpp import constants as c


@dataclass(frozen=True, slots=True)
class Tlv:
    """One optional parameter: tag and raw value."""

    tag: int
    value: bytes


Tlvs = tuple[Tlv, ...]


def find_tlv(tlvs: Tlvs, tag: int) -> bytes | None:
    """The value of the first TLV with `tag`, or None."""
    for tlv in tlvs:
        if tlv.tag == tag:
            return tlv.value
    return None


# --- PDU classes --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bind:
    """bind_transmitter / bind_receiver / bind_transceiver (see `command_id`)."""

    command_id: int
    sequence: int
    system_id: str
    password: str
    system_type: str = ""
    interface_version: int = c.INTERFACE_VERSION
    addr_ton: int = 0
    addr_npi: int = 0
    address_range: str = ""
    status: int = 0


@dataclass(frozen=True, slots=True)
class BindResp:
    """The answer to a bind; `command_id` is the bind's id | 0x80000000."""

    command_id: int
    sequence: int
    status: int = 0
    system_id: str = ""
    tlvs: Tlvs = ()


@dataclass(frozen=True, slots=True)
class _ShortMessage:
    sequence: int
    source_addr: str
    destination_addr: str
    short_message: bytes = b""
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    esm_class: int = 0
    protocol_id: int = 0
    priority_flag: int = 0
    schedule_delivery_time: str = ""
    validity_period: str = ""
    registered_delivery: int = 0
    replace_if_present_flag: int = 0
    data_coding: int = 0
    sm_default_msg_id: int = 0
    tlvs: Tlvs = ()
    status: int = 0


@dataclass(frozen=True, slots=True)
class SubmitSm(_ShortMessage):
    """submit_sm: ESME -> SMSC."""

    command_id: ClassVar[int] = c.SUBMIT_SM


@dataclass(frozen=True, slots=True)
class DeliverSm(_ShortMessage):
    """deliver_sm: SMSC -> ESME (MO or delivery receipt)."""

    command_id: ClassVar[int] = c.DELIVER_SM


@dataclass(frozen=True, slots=True)
class EncodedSubmitSm:
    """submit_sm whose body is already encoded (`pdu.SubmitSmTemplate`): an MT part we send."""

    command_id: ClassVar[int] = c.SUBMIT_SM
    sequence: int
    body: bytes
    status: int = 0


@dataclass(frozen=True, slots=True)
class DataSm:
    """data_sm: either direction; the text (if any) is in the message_payload TLV."""

    command_id: ClassVar[int] = c.DATA_SM
    sequence: int
    source_addr: str
    destination_addr: str
    service_type: str = ""
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    dest_addr_ton: int = 0
    dest_addr_npi: int = 0
    esm_class: int = 0
    registered_delivery: int = 0
    data_coding: int = 0
    tlvs: Tlvs = ()
    status: int = 0


@dataclass(frozen=True, slots=True)
class _MessageIdResp:
    sequence: int
    status: int = 0
    message_id: str = ""
    tlvs: Tlvs = ()


@dataclass(frozen=True, slots=True)
class SubmitSmResp(_MessageIdResp):
    """submit_sm_resp: carries the SMSC's message id on success."""

    command_id: ClassVar[int] = c.SUBMIT_SM_RESP


@dataclass(frozen=True, slots=True)
class DeliverSmResp(_MessageIdResp):
    """deliver_sm_resp: message_id is unused (empty) in SMPP 3.4."""

    command_id: ClassVar[int] = c.DELIVER_SM_RESP


@dataclass(frozen=True, slots=True)
class DataSmResp(_MessageIdResp):
    """data_sm_resp."""

    command_id: ClassVar[int] = c.DATA_SM_RESP


@dataclass(frozen=True, slots=True)
class _HeaderOnly:
    sequence: int
    status: int = 0


@dataclass(frozen=True, slots=True)
class EnquireLink(_HeaderOnly):
    """enquire_link: keep-alive probe."""

    command_id: ClassVar[int] = c.ENQUIRE_LINK


@dataclass(frozen=True, slots=True)
class EnquireLinkResp(_HeaderOnly):
    """enquire_link_resp."""

    command_id: ClassVar[int] = c.ENQUIRE_LINK_RESP


@dataclass(frozen=True, slots=True)
class Unbind(_HeaderOnly):
    """unbind: the sender is about to close the session."""

    command_id: ClassVar[int] = c.UNBIND


@dataclass(frozen=True, slots=True)
class UnbindResp(_HeaderOnly):
    """unbind_resp."""

    command_id: ClassVar[int] = c.UNBIND_RESP


@dataclass(frozen=True, slots=True)
class GenericNack(_HeaderOnly):
    """generic_nack: the peer could not even parse our PDU (status says why)."""

    command_id: ClassVar[int] = c.GENERIC_NACK


@dataclass(frozen=True, slots=True)
class AlertNotification:
    """alert_notification: the SMSC says a handset is reachable again. It has no response."""

    command_id: ClassVar[int] = c.ALERT_NOTIFICATION
    sequence: int
    source_addr: str = ""  # the handset
    esme_addr: str = ""  # the address it had tried to reach us on
    source_addr_ton: int = 0
    source_addr_npi: int = 0
    esme_addr_ton: int = 0
    esme_addr_npi: int = 0
    tlvs: Tlvs = ()
    status: int = 0


@dataclass(frozen=True, slots=True)
class UnknownPdu:
    """Any command id we do not model (outbind, query_sm, cancel_sm, ...)."""

    command_id: int
    sequence: int
    status: int = 0
    body: bytes = b""


Pdu = (
    Bind
    | BindResp
    | SubmitSm
    | EncodedSubmitSm
    | DeliverSm
    | DataSm
    | SubmitSmResp
    | DeliverSmResp
    | DataSmResp
    | EnquireLink
    | EnquireLinkResp
    | Unbind
    | UnbindResp
    | GenericNack
    | AlertNotification
    | UnknownPdu
)


def is_response(command_id: int) -> bool:
    return bool(command_id & c.RESP_BIT)
