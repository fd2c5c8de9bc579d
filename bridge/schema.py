"""Every table of the bridge, registered on `SQLModel.metadata`: what migrations compare against.

Each domain owns its tables (`<domain>/tables.py`); this module only imports them all, so
Alembic's autogenerate and the migrations test see the whole schema. Nothing else needs it:
a domain imports its own tables and those of the domains below it.
"""

from __future__ import annotations

from sqlmodel import SQLModel

import bridge.api.tables
import bridge.inbound.mo_tables
import bridge.inbound.tables
import bridge.intake.tables
import bridge.keyword_lists.tables
import bridge.lists.tables
import bridge.mt.tables
import bridge.notices.tables
import bridge.portal.tables
import bridge.push.tables
import bridge.reports.tables
import bridge.smpp_outbox.tables
import bridge.smpp_server.tables
import bridge.tenants.directory_tables
import bridge.tenants.tables
import bridge.transports.tables  # noqa: F401

METADATA = SQLModel.metadata
