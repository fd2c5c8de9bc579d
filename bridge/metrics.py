"""The bridge's Prometheus metrics: every counter and histogram, built on a registry it is given.

`Metrics(registry)` is made once by the composition root (`bridge/app.py`) and handed to
the components that count (the SMTP intake, dispatch, the receipts inbox, the final-order
steps, the mailer, the inbound step, the push worker). Counting is an increment in
memory: nothing here reads the database. What is read at scrape time (queue depths, the
oldest due order, dirsync runs, the SMPP binds) is collected by `bridge/http/scrape.py`.
A component built without metrics (tests, CLI commands) gets `Metrics.unregistered()`,
on a registry of its own that nobody scrapes. Labels are bounded: code classes,
enhanced status codes, statuses, kinds, actions and SMSC names, never addresses or ids;
customer names only up to `max_customers` of them (the first seen), the rest as "other".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Counter, Histogram

OTHER = "other"  # the customer label once the named ones are used up

# Seconds from accepted to submitted, and from submitted to a final status (receipts can
# take hours, an SMSC's store-and-forward days).
SUBMIT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
FINAL_BUCKETS = (1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 3 * 86400)


@dataclass(frozen=True, slots=True)
class Metrics:
    """The metric objects, registered on one registry."""

    registry: CollectorRegistry
    smtp_sessions: Counter
    smtp_replies: Counter
    mails_accepted: Counter
    orders_accepted: Counter
    dispatch_outcomes: Counter
    orders_submitted: Counter
    orders_final: Counter
    receipts: Counter
    inbound_sms: Counter
    notices: Counter
    inbound_actions: Counter
    push_deliveries: Counter
    submit_seconds: Histogram
    final_seconds: Histogram
    customer_orders: Counter
    max_customers: int = 100
    _customers: set[str] = field(default_factory=set)

    def customer(self, name: str) -> str:
        """The label for customer `name`: itself, or "other" once `max_customers` are named."""
        if name in self._customers:
            return name
        if len(self._customers) < self.max_customers:
            self._customers.add(name)
            return name
        return OTHER

    @classmethod
    def on(cls, registry: CollectorRegistry, *, max_customers: int = 100) -> Metrics:
        """Create every metric on `registry`."""
        r = registry
        return cls(
            registry=r,
            max_customers=max_customers,
            smtp_sessions=Counter(
                "mailsms_smtp_sessions",
                "SMTP connections, by result (open, or refused at connect).",
                ["result"],
                registry=r,
            ),
            smtp_replies=Counter(
                "mailsms_smtp_replies",
                "SMTP replies sent, by code class (2xx, 4xx, 5xx) and reason (enhanced code).",
                ["code_class", "reason"],
                registry=r,
            ),
            mails_accepted=Counter(
                "mailsms_mails_accepted", "Mails accepted (committed, then 250).", registry=r
            ),
            orders_accepted=Counter(
                "mailsms_orders_accepted",
                "SMS orders written by accepted mails (one per recipient number).",
                registry=r,
            ),
            dispatch_outcomes=Counter(
                "mailsms_dispatch_outcomes",
                "Dispatch attempts of an order, by outcome (submitted, deferred, final, held, "
                "parked).",
                ["outcome"],
                registry=r,
            ),
            orders_submitted=Counter(
                "mailsms_orders_submitted",
                "Orders every part of which an SMSC accepted, by SMSC.",
                ["smsc"],
                registry=r,
            ),
            orders_final=Counter(
                "mailsms_orders_final",
                "Orders that reached a final status, by status.",
                ["status"],
                registry=r,
            ),
            receipts=Counter(
                "mailsms_receipts",
                "Delivery receipts stored, by SMSC and state.",
                ["smsc", "state"],
                registry=r,
            ),
            inbound_sms=Counter(
                "mailsms_inbound_sms", "Inbound (MO) SMS stored, by SMSC.", ["smsc"], registry=r
            ),
            notices=Counter(
                "mailsms_notices",
                "Notice deliveries (status mail, DSN, SMS2Mail, reports ...), by kind and "
                "result (sent, deferred, failed, held).",
                ["kind", "result"],
                registry=r,
            ),
            inbound_actions=Counter(
                "mailsms_inbound_actions",
                "Actions run for inbound SMS, by action (unroutable: nobody to give it to).",
                ["action"],
                registry=r,
            ),
            push_deliveries=Counter(
                "mailsms_push_deliveries",
                "HTTP push deliveries, by result (sent, deferred, failed).",
                ["result"],
                registry=r,
            ),
            submit_seconds=Histogram(
                "mailsms_order_submit_seconds",
                "Seconds from an order's acceptance to its submission.",
                buckets=SUBMIT_BUCKETS,
                registry=r,
            ),
            final_seconds=Histogram(
                "mailsms_order_final_seconds",
                "Seconds from an order's submission to its final status.",
                buckets=FINAL_BUCKETS,
                registry=r,
            ),
            customer_orders=Counter(
                "mailsms_customer_orders_accepted",
                "Orders accepted per customer (the first max_customers names; the rest as "
                '"other").',
                ["customer"],
                registry=r,
            ),
        )

    @classmethod
    def unregistered(cls) -> Metrics:
        """Metrics on a registry of their own (a component that nobody scrapes)."""
        return cls.on(CollectorRegistry(auto_describe=False))


def elapsed(start: datetime, end: datetime) -> float:
    """Seconds from `start` to `end`, at least 0 (a naive time, as SQLite gives it back, is UTC)."""
    start = start if start.tzinfo is not None else start.replace(tzinfo=UTC)
    end = end if end.tzinfo is not None else end.replace(tzinfo=UTC)
    return max(0.0, (end - start).total_seconds())
