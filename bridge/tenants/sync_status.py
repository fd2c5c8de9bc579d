"""The status words of a directory-sync run (`sync_run.status`), as stored.

Pure code. A `StrEnum`: a member is the very string the database holds.
"""

from __future__ import annotations

import enum


class SyncRunStatus(enum.StrEnum):
    APPLIED = "applied"  # the plan was written
    UNCHANGED = "unchanged"  # the directory and the database already agreed
    DRY_RUN = "dry_run"  # the plan was printed, nothing written
    REFUSED = "refused"  # a safety limit refused the plan; nothing written
    FAILED = "failed"  # the source or the database failed; nothing written


SYNC_FAILURES = frozenset({SyncRunStatus.REFUSED, SyncRunStatus.FAILED})
