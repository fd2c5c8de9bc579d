"""Intake tables: the numbers each customer sent to recently and the alerts of SMS pumping."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class VelocityNumber(SQLModel, table=True):
    """When a customer last sent to a number: what the SMS pumping check counts.

    One row per customer and number (upserted at each commit), so counting the numbers
    under a prefix reads at most one row per number, whatever the order history. On
    SQLite the rows live in the primary key's b-tree (WITHOUT ROWID): one write each.
    """

    __tablename__ = "velocity_number"
    __table_args__ = {"sqlite_with_rowid": False}

    customer_id: int = Field(primary_key=True)
    number: str = Field(primary_key=True)  # E.164
    last_at: datetime  # the daily purge reads the whole (small) table


class VelocityAlert(SQLModel, table=True):
    """When a customer's admin was last alerted about held SMS (one alert per window)."""

    __tablename__ = "velocity_alert"

    customer_id: int = Field(primary_key=True)
    alerted_at: datetime
