"""The error tree: every exception the bridge and dirsync define is a BridgeError on one branch."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path
from types import ModuleType

import pytest

import bridge
import dirsync
from bridge.errors import (
    BridgeError,
    ConfigError,
    InputError,
    PermanentFailure,
    Reject,
    StorageUnavailable,
    TemporaryFailure,
)

ARCHITECTURE = Path(__file__).parents[2] / "docs" / "architecture.md"

# exceptions that are not errors of the bridge, with the reason
OUTSIDE_THE_TREE = {
    "bridge.notices.smtp_client._Failed": (
        "control flow inside SmtpClient.send: one session's failure, always turned into "
        "DeliveryDeferred or DeliveryFailed before it leaves the module"
    ),
    "bridge.notices.smtp_client._Stale": (
        "control flow inside SmtpClient._session: a kept session the relay ended, caught "
        "there and the mail sent over another session"
    ),
    "bridge.db.store._NoAnswer": (
        "control flow inside Store: a call whose connection its deadline cut, raised as "
        "SQLAlchemy's DisconnectionError so that the store handles it as a lost connection, "
        "and always turned into StorageUnreachable before it leaves the store"
    ),
    "bridge.push.worker._Stale": (
        "control flow inside Pusher.send: a kept connection the receiver ended or left an "
        "earlier answer on (raised from httpcore's trace), caught there and the push sent "
        "over a new connection"
    ),
}

BRANCHES: tuple[type[BridgeError], ...] = (
    InputError,
    ConfigError,
    TemporaryFailure,
    PermanentFailure,
)

# a failure that can be either: a base, with one subclass on each side
SPLIT_BASES = {
    "bridge.transports.base.TransportError",
    "bridge.notices.mx.DnsFailure",
    "bridge.notices.smtp_client.DeliveryError",
}


def _modules() -> list[ModuleType]:
    found = []
    for package in (bridge, dirsync):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            found.append(importlib.import_module(info.name))
    return [bridge, dirsync, *found]


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _exceptions() -> dict[str, type[BaseException]]:
    found: dict[str, type[BaseException]] = {}
    for module in _modules():
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == module.__name__
            ):
                found[_name(obj)] = obj
    return found


EXCEPTIONS = _exceptions()


def test_the_walk_finds_the_exceptions() -> None:
    assert len(EXCEPTIONS) > 40  # an import walk that found nothing would prove nothing
    assert "dirsync.safety.Refused" in EXCEPTIONS
    assert "bridge.smpp.session.ResponseTimeout" in EXCEPTIONS
    assert set(OUTSIDE_THE_TREE) <= set(EXCEPTIONS)  # no stale exemption


@pytest.mark.parametrize("name", sorted(EXCEPTIONS))
def test_every_exception_derives_from_bridge_error(name: str) -> None:
    if name in OUTSIDE_THE_TREE:
        assert not issubclass(EXCEPTIONS[name], BridgeError)
        assert name.rpartition(".")[2].startswith("_"), "only private classes stay outside"
        return
    assert issubclass(EXCEPTIONS[name], BridgeError), f"{name} is not a BridgeError"


@pytest.mark.parametrize("name", sorted(EXCEPTIONS))
def test_every_exception_is_on_exactly_one_branch(name: str) -> None:
    cls = EXCEPTIONS[name]
    if name in OUTSIDE_THE_TREE or cls is BridgeError:
        return
    branches = [b for b in BRANCHES if issubclass(cls, b)]
    if name in SPLIT_BASES:
        assert branches == []
        sides = {b for sub in cls.__subclasses__() for b in BRANCHES if issubclass(sub, b)}
        assert sides == {TemporaryFailure, PermanentFailure}
        return
    if cls in BRANCHES:
        return
    assert len(branches) == 1, f"{name} is on {branches or 'no branch'}"


def test_the_branches_and_their_known_members() -> None:
    assert issubclass(Reject, InputError)
    assert issubclass(StorageUnavailable, TemporaryFailure)
    temporary = [n for n, c in EXCEPTIONS.items() if issubclass(c, TemporaryFailure)]
    permanent = [n for n, c in EXCEPTIONS.items() if issubclass(c, PermanentFailure)]
    assert "bridge.transports.base.TransportTemporaryFailure" in temporary
    assert "bridge.transports.base.InboxUnavailable" in temporary
    assert "bridge.smpp.esme.NotBound" in temporary
    assert "bridge.transports.base.TransportPermanentFailure" in permanent
    assert "bridge.notices.smtp_client.DeliveryFailed" in permanent
    assert not set(temporary) & set(permanent)


def test_value_errors_stay_value_errors() -> None:
    """Callers (pydantic validators among them) catch these as ValueError."""
    for name in (
        "bridge.mail_address.MailAddressError",
        "bridge.tenants.policy_values.PolicyError",
        "bridge.intake.addresses.RecipientError",
        "bridge.domains.DomainError",
        "bridge.text.gsm7.Gsm7EncodeError",
        "bridge.smpp.udh.UdhError",
        "bridge.inbound.config.NumbersError",
    ):
        assert issubclass(EXCEPTIONS[name], ValueError), name


def test_the_architecture_page_names_every_error() -> None:
    text = ARCHITECTURE.read_text(encoding="utf-8")
    section = text.split("\n### Errors\n", 1)[1].split("\n#", 1)[0]
    named = set(re.findall(r"`(\w+)`", section))
    missing = sorted(
        n for n, c in EXCEPTIONS.items() if n not in OUTSIDE_THE_TREE and c.__name__ not in named
    )
    assert missing == [], f"docs/architecture.md (Errors) does not name {missing}"
