"""The status words of a keyword-list member row, as stored.

Pure code. A `StrEnum`: a member is the very string the database holds.
"""

from __future__ import annotations

import enum


class MemberStatus(enum.StrEnum):
    MEMBER = "member"  # on the list
    LEFT = "left"  # left by SMS; the row stays for the "changes" export
