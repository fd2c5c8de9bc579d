"""The inbound actions: SMS2Mail, auto-reply, STOP/START, list join/leave, HTTP push, SMPP.

Each action runs inside the inbound message's one transaction (`conn`), writing only
through store functions: notices, orders, stop-list rows, list rows and push rows are
queues the other workers drain, so an action never waits on the network.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from bridge.inbound import actions_store as act_sql
from bridge.inbound import store as inbound_sql
from bridge.inbound.choice import Choice
from bridge.inbound.config import (
    Action,
    AutoReplyAction,
    ListAction,
    SmppAction,
    Sms2MailAction,
    StopAction,
)
from bridge.inbound.settings import InboundSettings
from bridge.inbound.store import CustomerInbound, InboundRow
from bridge.keyword_lists import store as list_sql
from bridge.notices import headers
from bridge.notices.customer_templates import Templates
from bridge.notices.queue import queue_notice
from bridge.notices.shown_time import shown_time
from bridge.notices.subjects import reply_topic
from bridge.push.body import render_body
from bridge.push.queue import PushFields, queue_push
from bridge.push.settings import PushSettings
from bridge.push.target import PushAction
from bridge.smpp_outbox.queue import queue_mo

log = logging.getLogger("bridge.inbound")


@dataclass
class Effects:
    """What the actions for one message did (for the row's status and the log)."""

    notices: int = 0
    orders: int = 0
    pushes: int = 0
    handled: bool = False  # STOP/START, a list or a sent auto-reply took care of it
    notes: list[str] = field(default_factory=list)
    order_id: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """One inbound message with its routing decision and customer."""

    row: InboundRow
    choice: Choice
    customer: CustomerInbound | None

    @property
    def customer_name(self) -> str:
        return self.customer.name if self.customer else ""

    def context(self) -> dict[str, Any]:
        return {
            "inbound_id": self.row.id,
            "source": self.row.source,
            "destination": self.row.destination,
            "text": self.row.text,
            "keyword": self.choice.keyword,
            "customer": self.customer_name,
            "received_at": self.row.received_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        }


class Actions:
    def __init__(
        self,
        settings: InboundSettings,
        push: PushSettings,
        templates: Templates,
        domain: str,
        default_timezone: str = "UTC",
    ) -> None:
        self.settings = settings
        self.push = push
        self.templates = templates
        self.domain = domain
        self.default_timezone = default_timezone

    def run(
        self, conn: Connection, msg: Message, action: Action, now: datetime, fx: Effects
    ) -> None:
        if isinstance(action, Sms2MailAction):
            self.sms2mail(conn, msg, action, now, fx)
        elif isinstance(action, AutoReplyAction):
            self.autoreply(conn, msg, action, now, fx)
        elif isinstance(action, StopAction):
            self.stop(conn, msg, action.type == "stop", now, fx)
        elif isinstance(action, ListAction):
            self.list(conn, msg, action, now, fx)
        elif isinstance(action, PushAction):
            self.push_sms(conn, msg, action, now, fx)
        elif isinstance(action, SmppAction):
            self.smpp(conn, msg, action, now, fx)

    def last_resort(self, msg: Message) -> tuple[str, ...]:
        """The number's fallback addresses, else the customer's postmaster, else the bridge's."""
        if msg.choice.fallback:
            return msg.choice.fallback
        if msg.customer and msg.customer.postmaster:
            return (msg.customer.postmaster,)
        return (self.settings.postmaster,) if self.settings.postmaster else ()

    def sms2mail(
        self, conn: Connection, msg: Message, action: Sms2MailAction, now: datetime, fx: Effects
    ) -> None:
        row = msg.row
        zone = (msg.customer.timezone if msg.customer else "") or self.default_timezone
        context = msg.context()
        sender = headers.sender_label(row.source)
        context |= {
            "received_at": shown_time(row.received_at, zone),
            "timezone": zone,
            "source": sender,
            # only a number gets a reply address: an answer to it is sent as SMS
            "reply_to": headers.number_address(row.source, self.domain) or "",
            "from_name": f"SMS from {sender}",
            "others": [],
            "routed_by": action.mode,
        }
        recipients: tuple[str, ...] = ()
        if action.mode == "static":
            recipients = action.to
        else:
            found = inbound_sql.assignments_for(
                conn,
                row.source,
                row.destination,
                now,
                msg.choice.customer_id if msg.choice.row else None,
                self.settings.reply_window,
            )
            if found:
                winner = found[0]
                recipients = (winner.address,)
                others = sorted({a.address for a in found[1:] if a.user_id != winner.user_id})
                context |= {
                    "order_id": winner.order_id or "",
                    "original_text": winner.text,
                    "original_subject": reply_topic(winner.subject or ""),
                    "in_reply_to": winner.message_id,
                    "to_name": winner.display_name,
                    "others": others,
                    "assigned_at": shown_time(winner.created_at, zone),
                }
        if not recipients:
            recipients = self.last_resort(msg)
            context["routed_by"] = "fallback"
        if not recipients:
            fx.notes.append("sms2mail: no assignment, no fallback, no postmaster")
            return
        context.setdefault("original_text", "")
        context.setdefault("original_subject", "")
        context.setdefault("order_id", "")
        context.setdefault("in_reply_to", "")
        for address in recipients:
            queue_notice(
                conn,
                "sms2mail",
                address,
                context,
                now,
                customer=msg.customer_name,
                inbound_id=row.id,
                order_id=context["order_id"] or None,
            )
            inbound_sql.record_conversation(conn, address, row.source, row.destination, now)
            fx.notices += 1
        fx.order_id = context["order_id"] or fx.order_id

    def _system_sms(
        self, conn: Connection, msg: Message, text: str, reason: str, now: datetime, fx: Effects
    ) -> None:
        customer_id = msg.customer.id if msg.customer else None
        order_id = act_sql.queue_system_sms(
            conn, customer_id, msg.row.destination, msg.row.source, text, reason, now
        )
        if order_id:
            fx.orders += 1
            fx.notes.append(f"{reason}: {order_id}")

    def autoreply(
        self, conn: Connection, msg: Message, action: AutoReplyAction, now: datetime, fx: Effects
    ) -> None:
        source = msg.row.source
        if not _can_receive(source):
            fx.notes.append("autoreply: the sender cannot receive SMS")
            return
        if msg.customer and act_sql.is_stopped(
            conn, msg.customer.id, source, (msg.row.destination,)
        ):
            fx.notes.append("autoreply: the sender opted out")
            return
        interval = action.min_interval or self.settings.autoreply_interval
        if not act_sql.answer_allowed(conn, msg.row.destination, source, now, interval):
            fx.notes.append("autoreply: rate-limited")
            return
        context = msg.context()
        if action.text:
            text = self.templates.render_string(action.text, context)
        else:
            text = self.templates.render("autoreply.txt", context, msg.customer_name)
        self._system_sms(conn, msg, text.strip(), "autoreply", now, fx)
        fx.handled = True  # answered; a rate-limited auto-reply leaves it to a person

    def stop(
        self, conn: Connection, msg: Message, opt_out: bool, now: datetime, fx: Effects
    ) -> None:
        """Opt out (STOP) or in again (START). The change is applied every time; the SMS
        that confirms it only when the state changed (a repeated STOP sends no second
        confirmation) and at most once per `[inbound] confirmation_interval` per number
        and sender, so alternating STOP and START (or forged MOs) cannot make the bridge
        send one SMS per incoming one."""
        customer_id = msg.customer.id if msg.customer else 0
        scope = msg.customer.stop_scope if msg.customer else "global"
        service = msg.row.destination if scope == "service" else ""
        fx.handled = True
        if opt_out:
            changed = act_sql.add_stop(conn, customer_id, msg.row.source, service, now, "sms")
            what, unchanged = "opted out", "had opted out already"
            text = self.settings.stop_confirmation
        else:
            removed = act_sql.remove_stop(conn, customer_id, msg.row.source, service or None)
            changed = removed > 0
            what, unchanged = "opted in again", "had not opted out"
            text = self.settings.start_confirmation
        reason = "stop" if opt_out else "start"
        if not changed:
            log.info("inbound %s: %s %s; no confirmation", msg.row.id, msg.row.source, unchanged)
            fx.notes.append(f"{reason}: {unchanged}, no confirmation")
            return
        log.info("inbound %s: %s %s (customer %s)", msg.row.id, msg.row.source, what, customer_id)
        # The change above stands whatever happens here; only the SMS answer is limited.
        if not _can_receive(msg.row.source):  # a name (an alphanumeric sender) has no phone
            fx.notes.append(f"{reason}: the sender cannot receive SMS, no confirmation")
            return
        interval = self.settings.confirmation_interval
        if not act_sql.answer_allowed(
            conn, msg.row.destination, msg.row.source, now, interval, act_sql.Answer.CONFIRMATION
        ):
            log.warning(
                "inbound %s: confirmation to %s rate-limited (one per %g s from %s)",
                msg.row.id,
                msg.row.source,
                interval,
                msg.row.destination,
            )
            fx.notes.append(f"{reason}: confirmation rate-limited")
            return
        self._system_sms(conn, msg, text, reason, now, fx)

    def list(
        self, conn: Connection, msg: Message, action: ListAction, now: datetime, fx: Effects
    ) -> None:
        if msg.customer is None:
            fx.notes.append(f"list {action.list}: no customer")
            return
        lid = list_sql.list_id(conn, msg.customer.id, action.list, now)
        fx.handled = True
        changed = list_sql.set_membership(conn, lid, msg.row.source, action.op == "join", now)
        fx.notes.append(f"list {action.list}: {action.op}{'' if changed else ' (no change)'}")

    def push_sms(
        self, conn: Connection, msg: Message, action: PushAction, now: datetime, fx: Effects
    ) -> None:
        context = msg.context()
        body, content_type = render_body(self.templates, action.format, context, msg.customer_name)
        customer_id = msg.customer.id if msg.customer else 0
        queue_push(
            conn,
            customer_id,
            msg.row.id,
            action.model_dump(),
            body,
            content_type,
            now,
            self.push.give_up_after,
            PushFields.inbound(context),  # the customer's push template, if it has one
        )
        fx.pushes += 1

    def smpp(
        self, conn: Connection, msg: Message, action: SmppAction, now: datetime, fx: Effects
    ) -> None:
        """SMS to SMPP: kept in the SMPP outbox until the account's client takes it."""
        row = msg.row
        parts = queue_mo(conn, action.system_id, row.source, row.destination, row.text, row.id, now)
        fx.handled = True
        fx.notes.append(f"smpp {action.system_id}: {parts} part(s) queued")


def _can_receive(source: str) -> bool:
    """Whether an SMS can be sent back to `source`: a number, not a sender name
    (an alphanumeric sender id, which no phone answers to)."""
    return source.lstrip("+").isdigit()
