"""The `[[smsc]]` table: one SMPP connection to an SMSC (a transport)."""

from __future__ import annotations

from typing import Annotated, Literal

import phonenumbers
from pydantic import Field, field_validator

from bridge.sections import Port, Seconds, Section


class SmscSettings(Section):
    """One SMPP connection to an SMSC (a transport)."""

    name: str
    host: str = "127.0.0.1"
    port: Port = 2775
    system_id: str
    password: str = ""
    system_type: str = ""
    window: Annotated[int, Field(ge=1, le=1000)] = 10
    enquire_link_interval: Seconds = 30.0
    response_timeout: Seconds = 30.0
    reconnect_max: Seconds = 60.0
    # binds and flow control (docs/smpp.md)
    bind_type: Literal["transceiver", "transmitter", "receiver", "pair"] = "transceiver"
    binds: Annotated[int, Field(ge=1, le=32)] = 1
    rate: Annotated[float, Field(ge=0)] = 0.0  # submit_sm/s per bind, 0 = unlimited
    smsc_rate: Annotated[float, Field(ge=0)] = 0.0  # over all binds, 0 = unlimited
    burst: Annotated[float, Field(ge=1)] = 1.0
    throttle_pause_min: Seconds = 1.0
    throttle_pause_max: Seconds = 60.0
    throttle_retries: Annotated[int, Field(ge=0, le=10)] = 2
    bind_failure_min: Seconds = 10.0
    tls: bool = False
    tls_verify: bool = True
    tls_ca_file: str = ""
    # encoding and receipts
    service_type: str = ""
    default_alphabet: Literal["gsm7", "latin1", "ascii"] = "gsm7"
    gsm7_packed: bool = False
    concat: Literal["udh8", "udh16", "sar", "payload"] = "udh8"
    max_short_message: Annotated[int, Field(ge=20, le=254)] = 254
    submit_id_base: Literal["text", "dec", "hex"] = "text"
    receipt_id_base: Literal["text", "dec", "hex"] = "text"
    text_receipts: bool = False  # plain `id:… stat:…` text (no esm_class 0x04) is a receipt
    validity_format: Literal["relative", "absolute", "none"] = "relative"
    resubmit_marker: Literal["none", "replace_if_present"] = "none"
    source_ton: Annotated[int, Field(ge=0, le=6)] | None = None
    source_npi: Annotated[int, Field(ge=0, le=18)] | None = None
    mo_reassembly_timeout: Seconds = 1800.0
    stats_interval: Annotated[float, Field(ge=0)] = 60.0
    # how incoming numbers are written (docs/smpp.md "Numbers from the SMSC")
    ton0: Literal["auto", "international", "national"] = "auto"
    country: str = ""  # the SMSC's country for national numbers; "" = [defaults] default_country

    @field_validator("country")
    @classmethod
    def _check_country(cls, value: str) -> str:
        value = value.strip().upper()
        if value and value not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("expected an ISO 3166 country code such as DE, FR or GB")
        return value

    # receipts: no final report this long after submission ends the order "unconfirmed"
    # (unset: the end of the order's validity plus receipt_grace)
    receipt_timeout: Seconds | None = None
    receipt_grace: Annotated[float, Field(ge=0)] = 3600.0
    # sending rate of each sender id on this SMSC, SMS/s (0 = no limit of its own)
    long_code_rate: Annotated[float, Field(ge=0)] = 1.0
    short_code_rate: Annotated[float, Field(ge=0)] = 0.0
    alphanumeric_rate: Annotated[float, Field(ge=0)] = 0.0
    sender_rates: dict[str, Annotated[float, Field(ge=0)]] = Field(default={})  # copied
