"""`mailsms serve`: run the bridge in the foreground; it migrates the database first."""

from __future__ import annotations

import logging
import sys

import typer

from bridge import logcontext, packaged
from bridge.cli.common import ConfigOpt, fail, read_settings
from bridge.errors import ConfigError, StorageUnavailable


def serve(config: ConfigOpt = None) -> None:
    """Run the bridge in the foreground (Ctrl-C stops it).

    SMTP intake, dispatch to the SMSC, receipts, inbound SMS and notices; the database
    is migrated first. Without -c: SQLite in var/, the sandbox SMSC, notices in var/maildir/.
    With [server] processes = N, N processes accept SMTP on one port.
    """
    # Imported here, not at the top: the whole bridge takes about a second to import, which
    # every other command would pay for nothing.
    from bridge import processes
    from bridge.app import run_forever

    settings = read_settings(config)
    lacking = packaged.missing()
    if lacking:
        fail(
            f"this installation of mailsms is incomplete ({lacking[0]} is missing); "
            "reinstall it (pip install --force-reinstall mailsms)"
        )
    several = settings.server.processes > 1
    logcontext.configure(settings.log_level, settings.log_format, sys.stderr, with_pid=several)
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd's per-command chatter
    logging.getLogger("uvicorn.error").setLevel(logging.WARNING)  # "Started server process"
    try:
        if several:
            status = processes.serve(settings)
            if status:
                raise typer.Exit(status)
        else:
            run_forever(settings)
    except ConfigError as exc:
        fail(str(exc))
    except StorageUnavailable as exc:
        fail(f"cannot start: {exc} (is it running and reachable with these credentials?)")
    except OSError as exc:
        fail(f"cannot start: {exc}")
