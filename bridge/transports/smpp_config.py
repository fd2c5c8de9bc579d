"""SmppConfig: everything one SMSC transport needs (binds, flow control, encoding, receipts).

It is the `[[smsc]]` table (`SmscSettings`, where every key and default is declared)
plus the timings the settings file does not set: how long a connect and an unanswered
enquire_link may take, where the reconnect backoff starts, how long a submit waits for a
bind. The app builds it from the settings (`SmppConfig.of`); tests build it directly.
"""

from __future__ import annotations

from typing import Any

from bridge.sections import Seconds
from bridge.smpp.address import AddressRules
from bridge.smpp.encoding import EncodingOptions
from bridge.smpp.esme import EsmeSettings
from bridge.smpp.throttle import SenderRates
from bridge.transports.base import TransportLimits
from bridge.transports.settings import IdBase, SmscSettings

_ESME = EsmeSettings(host="", port=0, system_id="", password="")


class SmppConfig(SmscSettings):
    """One SMSC: its binds and how to talk to it."""

    enquire_link_timeout: Seconds = _ESME.enquire_link_timeout
    connect_timeout: Seconds = _ESME.connect_timeout
    reconnect_min: Seconds = _ESME.reconnect_min
    bind_wait: Seconds = 5.0  # how long submit waits for a (re)bind before "not bound"

    @classmethod
    def of(cls, smsc: SmscSettings, **changes: Any) -> SmppConfig:
        """The config of one `[[smsc]]` table, with `changes` (e.g. the port actually used)."""
        return cls.model_validate({**smsc.model_dump(), **changes})

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
                tuple(self.sender_rates.items()),
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
