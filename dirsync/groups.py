"""Pure: resolve ordered group → profile rules, nested groups included, to a profile name.

AD's `memberOf` lists direct groups only and slapd cannot emulate the IN_CHAIN
matching rule, so nesting is resolved here: each rule's group is expanded to the
transitive closure of its `member` values (cycles are harmless), and a user gets
the profile of the first rule whose closure contains the user's DN or one of the
groups in the user's `memberOf`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass


def normalise_dn(dn: str) -> str:
    """A DN in a comparable form: escapes decoded (`\\28` = `(`), RDNs trimmed, lower-cased."""
    rdns: list[str] = []
    current = bytearray()
    i = 0
    raw = dn.encode("utf-8")
    while i < len(raw):
        ch = raw[i : i + 1]
        if ch == b"\\" and i + 1 < len(raw):
            pair = raw[i + 1 : i + 3]
            if len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair):
                current.append(int(pair, 16))
                i += 3
                continue
            current += raw[i + 1 : i + 2]  # an escaped special character, kept literally
            i += 2
            continue
        if ch in (b",", b";"):
            rdns.append(_rdn(current))
            current = bytearray()
        else:
            current += ch
        i += 1
    rdns.append(_rdn(current))
    return ",".join(rdns)


def _rdn(value: bytearray) -> str:
    text = value.decode("utf-8", "replace")
    name, sep, val = text.partition("=")
    val = "".join("\\" + c if c in ',+"\\<>;=' else c for c in val.strip())
    return f"{name.strip().lower()}{sep}{val.lower()}"


@dataclass(frozen=True, slots=True)
class ProfileRule:
    """Members (direct or nested) of `group` get `profile`; rules are tried in order."""

    group: str
    profile: str


class ProfileResolver:
    """Answers "which profile does this user get" from the groups read once per run."""

    def __init__(
        self,
        rules: Sequence[ProfileRule],
        members: Mapping[str, Iterable[str]],
        default: str | None = None,
    ) -> None:
        graph: dict[str, set[str]] = {}
        for group, values in members.items():
            graph.setdefault(normalise_dn(group), set()).update(normalise_dn(m) for m in values)
        self.default = default
        self._rules: list[tuple[str, str, frozenset[str]]] = []
        for rule in rules:
            root = normalise_dn(rule.group)
            self._rules.append((root, rule.profile, frozenset(_closure(root, graph))))

    @property
    def missing_groups(self) -> list[str]:
        """Rule groups that were not found (empty closure): worth a warning."""
        return [root for root, _, closure in self._rules if not closure]

    def profile_for(self, dn: str, member_of: Iterable[str] = ()) -> str | None:
        if not self._rules:
            return self.default
        user = normalise_dn(dn)
        direct = {normalise_dn(g) for g in member_of}
        for root, profile, closure in self._rules:
            if user in closure or root in direct or not direct.isdisjoint(closure):
                return profile
        return self.default


def _closure(root: str, graph: Mapping[str, set[str]]) -> set[str]:
    """Every DN reachable from `root` through `member` links (root itself excluded)."""
    seen: set[str] = set()
    stack = [root]
    while stack:
        for member in graph.get(stack.pop(), ()):
            if member not in seen and member != root:
                seen.add(member)
                stack.append(member)
    return seen
