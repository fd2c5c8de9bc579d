"""The sandbox CLI: `sandbox inbox|send` (the phones) and `sandbox fail|delay|rules|clear`.

Rules are written to the sandbox's rules file, which a running `mailsms serve` reads
again when it changes: a rule applies to the next SMS, without a restart.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import signal
from pathlib import Path
from typing import Annotated

import typer

from bridge.app import loop_factory
from bridge.cli.common import ConfigOpt, fail, read_settings
from bridge.errors import ConfigError
from bridge.sandbox.phone import SandboxError, send_mo
from bridge.sandbox.rules import (
    FAILURE_HELP,
    Failure,
    RuleError,
    SandboxRule,
    check_number,
    make_rule,
    read_file,
    with_rule,
    write_file,
)
from bridge.sandbox.settings import SandboxConfig
from bridge.sandbox.smsc import SandboxSmsc, read_inbox
from bridge.settings import Settings

HELP = f"""The built-in sandbox SMSC: what phones received, texting the bridge, failed deliveries.

\b
  mailsms sandbox inbox                          the SMS the phones received
  mailsms sandbox send --from +491701234567 Hi   a phone texts the bridge
  mailsms sandbox fail +491701234567             this number's SMS fail
  mailsms sandbox fail '+49170*' --as rejected   every number starting +49170 is refused
  mailsms sandbox delay +491701234567 600        this phone gets its SMS 10 minutes late
  mailsms sandbox rules                          the rules in force
  mailsms sandbox clear [NUMBER]                 back to normal delivery
  mailsms sandbox serve [--port 2775]            the sandbox SMSC on its own, for a bridge
                                                 whose [[smsc]] points at it

\b
How an SMS fails (fail --as):
{chr(10).join(f"  {f.value:<14} {FAILURE_HELP[f]}" for f in Failure)}

A running `mailsms serve` applies a rule to the next SMS (rules are kept in the file
[sandbox] rules_file). Rules can also be written in the settings file
([[sandbox.rules]] number = "+491701234567" fail = "undeliverable"), and
[sandbox] receipt = "failed" fails every number.
"""

app = typer.Typer(help=HELP, no_args_is_help=True)

NumberArg = Annotated[
    str, typer.Argument(help="A number (+491701234567) or a prefix (+49170*).", show_default=False)
]


def _sandbox(config: Path | None) -> Settings:
    settings = read_settings(config)
    if not settings.sandbox.enabled:
        fail("the sandbox is not enabled in these settings ([sandbox] enabled = true)")
    return settings


def _file_rules(settings: Settings) -> list[SandboxRule]:
    try:
        return read_file(settings.sandbox.rules_file)
    except RuleError as exc:
        fail(f"{exc}; fix or delete the file")


def _set(settings: Settings, rule: SandboxRule) -> None:
    path = settings.sandbox.rules_file
    write_file(path, with_rule(_file_rules(settings), rule))
    typer.echo(rule.describe())
    typer.echo(f"(in {path.resolve()}; a running bridge applies it to the next SMS)")


def _current(settings: Settings, number: str) -> SandboxRule:
    return next((r for r in _file_rules(settings) if r.number == number), SandboxRule(number))


@app.command("inbox")
def sandbox_inbox(
    to: Annotated[str | None, typer.Option("--to", help="Only SMS to this number.")] = None,
    config: ConfigOpt = None,
) -> None:
    """List the SMS the sandbox's phones received (number, text, parts, encoding)."""
    path = read_settings(config).sandbox.inbox
    if not path.exists():
        typer.echo(
            f"no SMS received: there is no inbox {path.resolve()} yet (the sandbox writes "
            "it where `mailsms serve` runs; run this command there, or give -c FILE)"
        )
        return
    messages = read_inbox(path, to)
    if not messages:
        typer.echo("no SMS received" + (f" by {to}" if to else ""))
    for m in messages:
        typer.echo(
            f"{m.received_at}  to {m.destination}  from {m.source}  {m.parts} part(s) {m.encoding}"
        )
        typer.echo(f"    {m.text}")


@app.command("send")
def sandbox_send(
    text: str,
    source: Annotated[
        str, typer.Option("--from", help="The phone number that texts (e.g. +491701234567).")
    ],
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help=(
                "The bridge number it texts; default: whoever last texted this phone "
                "(like a phone's Reply button)."
            ),
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Text the bridge from a sandbox phone (an MO SMS) while `mailsms serve` runs."""
    settings = _sandbox(config)
    try:
        asyncio.run(
            send_mo(
                settings.sandbox.host,
                settings.sandbox.port,
                source,
                to,
                text,
                settings.sandbox.inbox,
            )
        )
    except (OSError, ValueError, SandboxError) as exc:
        fail(str(exc))
    typer.echo(f"sent from {source}")


@app.command("fail")
def sandbox_fail(
    number: NumberArg,
    how: Annotated[
        Failure, typer.Option("--as", help="How the SMS fails (see `sandbox --help`).")
    ] = Failure.UNDELIVERABLE,
    config: ConfigOpt = None,
) -> None:
    """Make the SMS to NUMBER fail from now on (until `sandbox clear NUMBER`)."""
    settings = _sandbox(config)
    try:
        rule = _current(settings, check_number(number))
    except RuleError as exc:
        fail(str(exc))
    _set(settings, SandboxRule(rule.number, how, rule.delay))


@app.command("delay")
def sandbox_delay(
    number: NumberArg,
    seconds: Annotated[
        float, typer.Argument(help="Seconds until the phone gets the SMS and the receipt goes.")
    ],
    config: ConfigOpt = None,
) -> None:
    """Deliver the SMS to NUMBER late from now on (until `sandbox clear NUMBER`)."""
    settings = _sandbox(config)
    try:
        rule = make_rule(number, None, seconds)
    except RuleError as exc:
        fail(str(exc))
    _set(settings, SandboxRule(rule.number, _current(settings, rule.number).fail, seconds))


@app.command("rules")
def sandbox_rules(config: ConfigOpt = None) -> None:
    """List the rules in force: the rules file's first, then the settings file's."""
    settings = _sandbox(config)
    path = settings.sandbox.rules_file
    found = [(r, f"rules file {path.resolve()}") for r in _file_rules(settings)] + [
        (make_rule(r.number, r.fail, r.delay), "settings") for r in settings.sandbox.rules
    ]
    if not found:
        typer.echo("no rules: every SMS is delivered as [sandbox] receipt says")
    for rule, where in found:
        typer.echo(f"{rule.describe()}  ({where})")


@app.command("clear")
def sandbox_clear(
    number: Annotated[
        str | None, typer.Argument(help="Only this number's rule (default: every rule).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Remove the rule for NUMBER, or every rule the rules file holds."""
    settings = _sandbox(config)
    rules = _file_rules(settings)
    try:
        wanted = check_number(number) if number is not None else None
    except RuleError as exc:
        fail(str(exc))
    kept = [r for r in rules if wanted is not None and r.number != wanted]
    write_file(settings.sandbox.rules_file, kept)
    typer.echo(f"removed {len(rules) - len(kept)} rule(s)")
    configured = [r.number for r in settings.sandbox.rules if wanted in (None, r.number)]
    if configured:
        typer.echo(
            f"the settings file's rules for {', '.join(configured)} stay in force: "
            "remove them from [[sandbox.rules]] and restart the bridge"
        )


@app.command("serve")
def sandbox_serve(
    config: ConfigOpt = None,
    host: Annotated[
        str | None, typer.Option("--host", help="Listen here (default: [sandbox] host).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", help="Listen on this port (default: [sandbox] port; 0: any free one)."
        ),
    ] = None,
) -> None:
    """Run the sandbox SMSC on its own, without a bridge, until Ctrl-C or SIGTERM.

    An SMPP server that accepts binds with [sandbox] system_id/password, writes every SMS
    to the phones' inbox and sends delivery receipts, as inside `mailsms serve`. Point a
    bridge at it with an [[smsc]] table (host, port, system_id, password) and [sandbox]
    enabled = false, e.g. to measure the bridge without the SMSC's work, or to share one
    sandbox between several bridges. `sandbox inbox|fail|delay|rules|clear` work the same.
    """
    settings = read_settings(config)
    cfg = settings.sandbox.config()
    if host is not None:
        cfg = dataclasses.replace(cfg, host=host)
    if port is not None:
        cfg = dataclasses.replace(cfg, port=port)
    try:  # on the bridge's loop ([server] event_loop)
        factory = loop_factory(settings.server.event_loop)
    except ConfigError as exc:
        fail(str(exc))
    try:
        with asyncio.Runner(loop_factory=factory) as runner:
            runner.run(_serve(cfg))
    except OSError as exc:
        fail(f"cannot listen on {cfg.host}:{cfg.port}: {exc.strerror or exc}")


async def _serve(cfg: SandboxConfig) -> None:
    smsc = SandboxSmsc(cfg)
    await smsc.start()
    gc.freeze()  # what the start loaded stays: out of the collector's full passes (as serve)
    loop = asyncio.get_running_loop()
    typer.echo(
        f"sandbox SMSC listening on {cfg.host}:{smsc.port} (system_id {cfg.system_id}; "
        f"phones' inbox: {cfg.inbox_path}; event loop: {type(loop).__module__.partition('.')[0]})"
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await smsc.stop()
