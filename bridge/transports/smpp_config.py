"""SmppConfig: everything one SMSC transport needs (binds, flow control, encoding, receipts).

The settings layer builds it from `[[smsc]]` (bridge.app.Bridge._smpp_config); tests build
it directly. Defaults are the safe ones: one transceiver bind, window 10, no rate limit
per bind, a long-code sender at 1 SMS/s, GSM-7 unpacked for data_coding 0, 8-bit-reference
UDH, receipt ids compared as text, receipts only when marked as such (esm_class or TLVs),
incoming TON 0 digits read `auto`, no replace_if_present marker, no final receipt by the
end of the validity plus an hour: "unconfirmed".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bridge.smpp.address import AddressRules, Ton0
from bridge.smpp.encoding import Alphabet, Concatenation, EncodingOptions
from bridge.smpp.esme import EsmeSettings
from bridge.smpp.throttle import SenderRates
from bridge.transports.base import TransportLimits

BindType = Literal["transceiver", "transmitter", "receiver", "pair"]
IdBase = Literal["text", "dec", "hex"]


@dataclass(frozen=True, slots=True)
class SmppConfig:
    """One SMSC: its binds and how to talk to it."""

    name: str
    host: str
    port: int
    system_id: str
    password: str
    system_type: str = ""
    bind_type: BindType = "transceiver"  # "pair": a transmitter plus a receiver per bind
    binds: int = 1  # parallel binds (each with its own window and rate)
    window: int = 10
    rate: float = 0.0  # submit_sm/s per bind (0 = unlimited)
    smsc_rate: float = 0.0  # submit_sm/s over all binds of this SMSC (0 = unlimited)
    burst: float = 1.0  # tokens a bucket may save up
    throttle_pause_min: float = 1.0  # first pause after ESME_RTHROTTLED / ESME_RMSGQFUL
    throttle_pause_max: float = 60.0
    throttle_retries: int = 2  # same PDU again after the pause, then defer the order
    enquire_link_interval: float = 30.0
    enquire_link_timeout: float = 10.0
    response_timeout: float = 30.0
    connect_timeout: float = 10.0
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    bind_failure_min: float = 10.0
    bind_wait: float = 5.0  # how long submit waits for a (re)bind before "not bound"
    service_type: str = ""
    default_alphabet: Alphabet = "gsm7"  # what data_coding 0x00 means on this SMSC
    gsm7_packed: bool = False
    concat: Concatenation = "udh8"
    max_short_message: int = 254
    submit_id_base: IdBase = "text"  # submit_sm_resp ids: compare as text, or as numbers
    receipt_id_base: IdBase = "text"  # ids in receipt *text* (TLV ids use submit_id_base)
    text_receipts: bool = False  # this SMSC sends receipts as plain `id:… stat:…` text
    validity_format: Literal["relative", "absolute", "none"] = "relative"
    resubmit_marker: Literal["none", "replace_if_present"] = "none"
    source_ton: int | None = None  # override the TON/NPI derived from the sender id
    source_npi: int | None = None
    ton0: Ton0 = "auto"  # how to read incoming TON 0 (unknown) digits
    country: str = ""  # the SMSC's country: national numbers (TON 2, leading 0) are its numbers
    mo_reassembly_timeout: float = 1800.0
    tls: bool = False
    tls_verify: bool = True
    tls_ca_file: str = ""
    stats_interval: float = 60.0  # seconds between per-bind log lines (0 = never)
    receipt_timeout: float | None = None  # None: the order's validity end + receipt_grace
    receipt_grace: float = 3600.0
    long_code_rate: float = 1.0  # SMS/s per sender id on this SMSC (0 = no limit of its own)
    short_code_rate: float = 0.0
    alphanumeric_rate: float = 0.0
    sender_rates: tuple[tuple[str, float], ...] = ()  # per sender id, before the kinds

    @property
    def limits(self) -> TransportLimits:
        """What dispatch needs: room (4 × windows × binds), receipt timeout, sender rates."""
        binds = 0 if self.bind_type == "receiver" else max(1, self.binds)
        return TransportLimits(
            capacity=max(1, 4 * self.window * binds),
            receipt_timeout=self.receipt_timeout,
            receipt_grace=self.receipt_grace,
            rates=SenderRates(
                self.long_code_rate,
                self.short_code_rate,
                self.alphanumeric_rate,
                self.sender_rates,
            ),
        )

    @property
    def encoding(self) -> EncodingOptions:
        return EncodingOptions(
            self.default_alphabet, self.gsm7_packed, self.concat, self.max_short_message
        )

    @property
    def address_rules(self) -> AddressRules:
        return AddressRules(self.ton0, self.country)

    def esme_settings(self, bind_type: str | None = None) -> EsmeSettings:
        return EsmeSettings(
            host=self.host,
            port=self.port,
            system_id=self.system_id,
            password=self.password,
            system_type=self.system_type,
            bind_type=bind_type or self.bind_type,
            window=self.window,
            response_timeout=self.response_timeout,
            connect_timeout=self.connect_timeout,
            enquire_link_interval=self.enquire_link_interval,
            enquire_link_timeout=self.enquire_link_timeout,
            reconnect_min=self.reconnect_min,
            reconnect_max=self.reconnect_max,
            bind_failure_min=self.bind_failure_min,
            tls=self.tls,
            tls_verify=self.tls_verify,
            tls_ca_file=self.tls_ca_file,
        )


def canonical_id(message_id: str, base: IdBase) -> str:
    """A message id in the form parts and receipts are matched on (numbers as decimal)."""
    if base == "text":
        return message_id
    try:
        return str(int(message_id, 16 if base == "hex" else 10))
    except ValueError:
        return message_id
