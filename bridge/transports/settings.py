"""The `[[smsc]]` table: one SMPP connection to an SMSC, declared once (keys, checks, defaults).

A default that belongs to the SMPP layer is taken from the value type that uses it (the
ESME's connection, the number rules, the sender rates, the transport limits) rather than
written again. `SmppConfig` (`bridge.transports.smpp_config`) is this table plus the
timings the file does not set.
"""

from __future__ import annotations

from typing import Annotated, Literal

import phonenumbers
from pydantic import Field, field_validator

from bridge.sections import Port, Seconds, Section
from bridge.smpp.address import AddressRules, Ton0
from bridge.smpp.esme import EsmeSettings
from bridge.smpp.throttle import SenderRates
from bridge.transports.base import TransportLimits

BindType = Literal["transceiver", "transmitter", "receiver", "pair"]
IdBase = Literal["text", "dec", "hex"]

_ESME = EsmeSettings(host="", port=0, system_id="", password="")
_ADDRESS = AddressRules()
_RATES = SenderRates()
_LIMITS = TransportLimits()


class SmscSettings(Section):
    """One SMPP connection to an SMSC (a transport); docs/smpp.md explains every key."""

    name: str
    host: str = "127.0.0.1"
    port: Port = 2775
    system_id: str
    password: str = ""
    system_type: str = _ESME.system_type
    window: Annotated[int, Field(ge=1, le=1000)] = _ESME.window
    enquire_link_interval: Seconds = _ESME.enquire_link_interval
    response_timeout: Seconds = _ESME.response_timeout
    reconnect_max: Seconds = _ESME.reconnect_max
    # binds and flow control (docs/smpp.md)
    bind_type: BindType = "transceiver"  # "pair": a transmitter plus a receiver per bind
    binds: Annotated[int, Field(ge=1, le=32)] = 1  # each with its own window and rate
    rate: Annotated[float, Field(ge=0)] = 0.0  # submit_sm/s per bind, 0 = unlimited
    smsc_rate: Annotated[float, Field(ge=0)] = 0.0  # over all binds, 0 = unlimited
    burst: Annotated[float, Field(ge=1)] = 1.0  # tokens a bucket may save up
    # first pause after ESME_RTHROTTLED / ESME_RMSGQFUL, doubling up to the max
    throttle_pause_min: Seconds = 1.0
    throttle_pause_max: Seconds = 60.0
    # the same PDU again after the pause this often, then the order is deferred
    throttle_retries: Annotated[int, Field(ge=0, le=10)] = 2
    bind_failure_min: Seconds = _ESME.bind_failure_min
    tls: bool = _ESME.tls
    tls_verify: bool = _ESME.tls_verify
    tls_ca_file: str = _ESME.tls_ca_file
    # encoding and receipts
    service_type: str = ""
    default_alphabet: Literal["gsm7", "latin1", "ascii"] = "gsm7"  # what data_coding 0 means
    gsm7_packed: bool = False
    concat: Literal["udh8", "udh16", "sar", "payload"] = "udh8"
    max_short_message: Annotated[int, Field(ge=20, le=254)] = 254
    submit_id_base: IdBase = "text"  # submit_sm_resp ids: compare as text, or as numbers
    receipt_id_base: IdBase = "text"  # ids in receipt *text* (TLV ids use submit_id_base)
    text_receipts: bool = False  # plain `id:… stat:…` text (no esm_class 0x04) is a receipt
    validity_format: Literal["relative", "absolute", "none"] = "relative"
    resubmit_marker: Literal["none", "replace_if_present"] = "none"
    # override the TON/NPI derived from the sender id
    source_ton: Annotated[int, Field(ge=0, le=6)] | None = None
    source_npi: Annotated[int, Field(ge=0, le=18)] | None = None
    mo_reassembly_timeout: Seconds = 1800.0
    stats_interval: Annotated[float, Field(ge=0)] = 60.0  # per-bind log lines, 0 = never
    # how incoming numbers are written (docs/smpp.md "Numbers from the SMSC")
    ton0: Ton0 = _ADDRESS.ton0
    country: str = _ADDRESS.country  # national numbers' country; "" = [defaults] default_country
    # receipts: no final report this long after submission ends the order "unconfirmed"
    # (unset: the end of the order's validity plus receipt_grace)
    receipt_timeout: Seconds | None = _LIMITS.receipt_timeout
    receipt_grace: Annotated[float, Field(ge=0)] = _LIMITS.receipt_grace
    # sending rate of each sender id on this SMSC, SMS/s (0 = no limit of its own)
    long_code_rate: Annotated[float, Field(ge=0)] = _RATES.long_code
    short_code_rate: Annotated[float, Field(ge=0)] = _RATES.short_code
    alphanumeric_rate: Annotated[float, Field(ge=0)] = _RATES.alphanumeric
    # per sender id, before the kinds (pydantic copies the default per instance)
    sender_rates: dict[str, Annotated[float, Field(ge=0)]] = Field(default={})

    @field_validator("country")
    @classmethod
    def _check_country(cls, value: str) -> str:
        value = value.strip().upper()
        if value and value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("expected an ISO 3166 country code such as DE, FR or GB")
        return value
