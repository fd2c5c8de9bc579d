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
    """A DN in a comparable form: RDNs trimmed, attribute names and values lower-cased."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in dn:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch in ",;":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    out = []
    for rdn in parts:
        name, sep, value = rdn.partition("=")
        out.append(f"{name.strip().lower()}{sep}{value.strip().lower()}")
    return ",".join(out)


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
