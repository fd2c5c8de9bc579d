"""Pure report building: order tables and CSV, monthly summaries (no database, no sockets)."""
