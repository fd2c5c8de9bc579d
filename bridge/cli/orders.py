"""`mailsms orders` and `mailsms held`: list orders, show one's history (and, for a waiting
order, when it is due and why), and decide about held orders.

An order is held for SMS pumping protection, after an unexpected error (its traceback
kept) or after an unknown outcome at the SMSC (`on_unknown_outcome = "hold"`); the
dispatcher never claims it. `orders release ID…` sends held orders after all, `orders
retry ID…` tries orders held after an error again once its cause is fixed; `held
list|release|refuse` select held orders by customer or mail as well.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import Engine

from bridge.cli.common import ConfigOpt, fail, open_database
from bridge.db.clock import utcnow
from bridge.db.store import run_sync
from bridge.intake.velocity import HOLD_REASON
from bridge.intake.velocity_store import held_orders, refuse_orders, release_orders
from bridge.mt import orders as order_sql
from bridge.mt.waiting import order_row, waiting
from bridge.notices.queue import list_notices
from bridge.outcomes.steps import STEPS

orders_app = typer.Typer(invoke_without_command=True)
held_app = typer.Typer(
    help="Orders held for review (SMS pumping protection, unexpected errors): list, release, "
    "refuse.",
    no_args_is_help=True,
)

OrderIds = Annotated[
    list[str], typer.Argument(help="Order ids (see `mailsms orders --status held`).")
]


@orders_app.callback()
def orders(
    ctx: typer.Context,
    status: Annotated[
        str | None,
        typer.Option(
            help=(
                "Only orders in this status (queued, deferred, submitted, delivered, "
                "undeliverable, unconfirmed, expired, failed, held)."
            )
        ),
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 20,
    show: Annotated[
        str | None,
        typer.Option(
            help="Print the history of this order id and, while it waits, when it is due and "
            "why (send_at, quiet hours, throttled, deferred after an error, held)."
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """List recent orders, or show one order's history; release or retry held orders."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = config  # `orders -c FILE release ID` as well as `orders release ID -c FILE`
        return
    engine = open_database(config)
    if show:
        _show(engine, show)
        return
    for o in run_sync(engine, order_sql.list_orders, status, limit):
        typer.echo(
            f"{o['id']:<16} {o['status']:<13} {o['recipient']:<16} parts={o['parts']} "
            f"attempts={o['attempts']} from={o['sender']} {o['created_at']:%Y-%m-%d %H:%M:%S}"
            + (f"  ({o['error'][:80]})" if o["error"] else "")
        )


def _show(engine: Engine, order_id: str) -> None:
    history = run_sync(engine, order_sql.order_history, order_id)
    if not history:
        fail(f"no order {order_id}")
    for at, event, detail in history:
        typer.echo(f"{at:%Y-%m-%d %H:%M:%S} {event:<13} {detail}")
    order = run_sync(engine, order_row, order_id)
    now = utcnow()
    wait = waiting(order, history, now) if order is not None else None
    if wait is not None:
        typer.echo(wait.line(now))
    for n in reversed(run_sync(engine, list_notices, None, 50, order_id)):
        reply = f": {n['error'].splitlines()[-1][:200]}" if n["error"] else ""
        typer.echo(f"notice {n['id']} {n['kind']} to <{n['recipient']}> {n['status']}{reply}")


def _reason(order: dict[str, Any]) -> str:
    """Why an order is held, in one line."""
    lines = (order["error"] or "").strip().splitlines()
    return lines[-1][:100] if lines else ""


def _held(engine: Engine, order_ids: list[str]) -> list[dict[str, Any]]:
    """The held orders named, or one line about the first that is unknown or not held."""
    held = {o["id"]: o for o in run_sync(engine, held_orders, None, None)}
    for order_id in order_ids:
        if order_id in held:
            continue
        history = run_sync(engine, order_sql.order_history, order_id)
        if not history:
            fail(f"no order {order_id}; see `mailsms orders`")
        at, event, _ = history[-1]
        fail(
            f"order {order_id} is not held (its last event: {event} at {at:%Y-%m-%d %H:%M:%S});"
            f" only held orders are released or retried, see `mailsms orders --show {order_id}`"
        )
    return [held[i] for i in dict.fromkeys(order_ids)]


def _queue(engine: Engine, held: list[dict[str, Any]], done: str) -> None:
    """Queue `held` for sending now, saying so per order; exit 1 if one was no longer held."""
    lost = []
    for order in held:
        if run_sync(engine, release_orders, [order["id"]], utcnow()):
            typer.echo(f"order {order['id']} {done} (it was held: {_reason(order)})")
        else:
            lost.append(order["id"])
    if lost:
        fail(f"no longer held, left as they are: {', '.join(lost)}")


def _config(ctx: typer.Context, config: Path | None) -> Path | None:
    return config if config is not None else ctx.obj


@orders_app.command("release")
def orders_release(ctx: typer.Context, order_ids: OrderIds, config: ConfigOpt = None) -> None:
    """Send held orders after all, whatever held them (SMS pumping protection, an unexpected
    error, an unknown outcome): they are queued now."""
    engine = open_database(_config(ctx, config))
    _queue(engine, _held(engine, order_ids), "released")


@orders_app.command("retry")
def orders_retry(ctx: typer.Context, order_ids: OrderIds, config: ConfigOpt = None) -> None:
    """Try orders held after an unexpected error or an unknown outcome again, once the cause
    is fixed: they are queued now (after an unknown outcome the phone may get the SMS twice).

    Orders held by SMS pumping protection are not errors: send them with `orders release`
    or refuse them with `held refuse`.
    """
    engine = open_database(_config(ctx, config))
    held = _held(engine, order_ids)
    for order in held:
        if (order["error"] or "").startswith(HOLD_REASON):
            fail(
                f"order {order['id']} is held by SMS pumping protection, not after an error; "
                f"send it with `mailsms orders release {order['id']}` or refuse it with "
                f"`mailsms held refuse {order['id']}`"
            )
    _queue(engine, held, "queued again")


@held_app.command("list")
def held_list(
    customer: Annotated[str | None, typer.Option(help="Only this customer's orders.")] = None,
    mail: Annotated[str | None, typer.Option(help="Only the orders of this mail id.")] = None,
    config: ConfigOpt = None,
) -> None:
    """List held orders with why they are held."""
    rows = run_sync(open_database(config), held_orders, customer, mail)
    if not rows:
        typer.echo("no held orders")
    for o in rows:
        typer.echo(
            f"{o['id']:<18} {o['created_at']:%Y-%m-%d %H:%M:%S} {o['recipient']:<16} "
            f"{o['customer']:<16} {o['sender']}  ({_reason(o)})"
        )


def _selected(
    engine: Engine, ids: list[str] | None, customer: str | None, mail: str | None
) -> list[str]:
    """The held orders named by id and/or selected by customer and mail; an id named that
    is not among them stops the command before anything changes."""
    if not ids and customer is None and mail is None:
        fail("name order ids, or select with --customer or --mail")
    found = [o["id"] for o in run_sync(engine, held_orders, customer, mail)]
    if ids:
        missing = [i for i in dict.fromkeys(ids) if i not in found]
        if missing:
            among = "" if customer is None and mail is None else " among those selected"
            fail(
                f"not held{among}: {', '.join(missing)}; nothing changed (see `mailsms held list`)"
            )
    return [i for i in found if not ids or i in ids]


@held_app.command("release")
def held_release(
    order_ids: Annotated[list[str] | None, typer.Argument(help="Order ids.")] = None,
    customer: Annotated[str | None, typer.Option(help="All of this customer's.")] = None,
    mail: Annotated[str | None, typer.Option(help="All of this mail's.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Send held orders after all (they are queued again now)."""
    engine = open_database(config)
    ids = _selected(engine, order_ids, customer, mail)
    done = run_sync(engine, release_orders, ids, utcnow())
    typer.echo(f"{done} order(s) released")


@held_app.command("refuse")
def held_refuse(
    order_ids: Annotated[list[str] | None, typer.Argument(help="Order ids.")] = None,
    customer: Annotated[str | None, typer.Option(help="All of this customer's.")] = None,
    mail: Annotated[str | None, typer.Option(help="All of this mail's.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Never send held orders: they fail, and their senders get the usual notice."""
    engine = open_database(config)
    ids = _selected(engine, order_ids, customer, mail)
    done = run_sync(engine, refuse_orders, ids, utcnow(), steps=STEPS)
    typer.echo(f"{done} order(s) refused")
