"""`mailsms smpp-account add|list|disable|enable|password|limits`: the SMPP server's accounts."""

from __future__ import annotations

from typing import Annotated

import typer

from bridge.cli.common import (
    ConfigOpt,
    PasswordEnv,
    PasswordFile,
    administer,
    open_database,
    read_password,
)
from bridge.db.store import run_sync
from bridge.smpp_outbox.queue import pending_count
from bridge.smpp_server.accounts import (
    BIND_TYPES,
    add_account,
    list_accounts,
    set_enabled,
    set_limits,
    set_password,
)

app = typer.Typer(
    help="SMPP accounts: customers' applications bind to the SMPP server with them.",
    no_args_is_help=True,
)


@app.command("add")
def account_add(
    system_id: str,
    user: Annotated[str, typer.Option(help="The user (mail address) whose SMS these are.")],
    network: Annotated[
        list[str], typer.Option(help="A client network (CIDR) allowed to bind; repeatable.")
    ],
    bind_type: Annotated[
        list[str] | None,
        typer.Option(help=f"A bind type allowed ({', '.join(BIND_TYPES)}); default: all."),
    ] = None,
    sender: Annotated[
        list[str] | None,
        typer.Option(help="A sender id allowed besides the user's own; '*' for any."),
    ] = None,
    max_binds: Annotated[int, typer.Option(help="Binds at the same time.")] = 2,
    window: Annotated[int, typer.Option(help="Unanswered requests per bind, each way.")] = 10,
    throughput: Annotated[
        float, typer.Option(help="submit_sm per second over all binds; 0: no limit.")
    ] = 0.0,
    password_env: PasswordEnv = None,
    password_file: PasswordFile = None,
    config: ConfigOpt = None,
) -> None:
    """Add an account; the password is stored as an scrypt hash (prompted for by default)."""
    password = read_password(password_env, password_file, "Password (at most 8 characters)")
    administer(
        config,
        lambda conn: add_account(
            conn,
            system_id,
            user,
            password,
            networks=network,
            bind_types=tuple(bind_type or BIND_TYPES),
            senders=tuple(sender or ()),
            max_binds=max_binds,
            window=window,
            throughput=throughput,
        ),
    )
    typer.echo(f"SMPP account {system_id} added for {user}")


@app.command("list")
def account_list(config: ConfigOpt = None) -> None:
    """List accounts: user, customer, networks, limits, state, deliver_sm waiting."""
    engine = open_database(config)
    for a in run_sync(engine, list_accounts):
        state = "enabled" if a.enabled else "disabled"
        waiting = run_sync(engine, pending_count, a.system_id)
        typer.echo(
            f"{a.system_id:<16} {a.user:<28} {a.customer:<16} {state:<8} "
            f"binds<={a.max_binds} window={a.window} tput={a.throughput:g}/s "
            f"networks={','.join(a.networks) or '-'} binds={','.join(a.bind_types)} "
            f"senders={','.join(a.senders) or '(own)'} waiting={waiting}"
        )


@app.command("disable")
def account_disable(system_id: str, config: ConfigOpt = None) -> None:
    """Disable an account (binds with it fail from now on)."""
    administer(config, set_enabled, system_id, False)
    typer.echo(f"SMPP account {system_id} disabled")


@app.command("enable")
def account_enable(system_id: str, config: ConfigOpt = None) -> None:
    """Enable a disabled account again."""
    administer(config, set_enabled, system_id, True)
    typer.echo(f"SMPP account {system_id} enabled")


@app.command("password")
def account_password(
    system_id: str,
    password_env: PasswordEnv = None,
    password_file: PasswordFile = None,
    config: ConfigOpt = None,
) -> None:
    """Set a new password."""
    password = read_password(password_env, password_file, "Password (at most 8 characters)")
    administer(config, set_password, system_id, password)
    typer.echo(f"SMPP account {system_id}: password changed")


@app.command("limits")
def account_limits(
    system_id: str,
    network: Annotated[list[str] | None, typer.Option(help="Replace the client networks.")] = None,
    max_binds: Annotated[int | None, typer.Option()] = None,
    window: Annotated[int | None, typer.Option()] = None,
    throughput: Annotated[float | None, typer.Option()] = None,
    sender: Annotated[list[str] | None, typer.Option(help="Replace the sender ids.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Change an account's networks, limits or sender ids (binds made later see them)."""
    administer(
        config,
        lambda conn: set_limits(
            conn,
            system_id,
            networks=network,
            max_binds=max_binds,
            window=window,
            throughput=throughput,
            senders=sender,
        ),
    )
    typer.echo(f"SMPP account {system_id} changed")
