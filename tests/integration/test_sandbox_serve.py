"""`mailsms sandbox serve`: the sandbox SMSC in a process of its own, and a bridge bound to it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import aiosmtplib

from bridge.sandbox.smsc import read_inbox
from bridge.settings import load_settings
from tests.helpers import make_mail, running_bridge, wait_for

MAILSMS = str(Path(sys.executable).parent / "mailsms")


async def test_a_bridge_sends_through_a_standalone_sandbox(tmp_path: Path) -> None:
    inbox = tmp_path / "phones.jsonl"
    smsc_config = tmp_path / "sandbox.toml"
    smsc_config.write_text(
        f'[sandbox]\nenabled = true\nsystem_id = "bench"\npassword = "s3cret"\ninbox = "{inbox}"\n'
        "receipt_delay = 0.05\n",
        encoding="utf-8",
    )
    proc = await asyncio.create_subprocess_exec(
        *[MAILSMS, "sandbox", "serve", "-c", str(smsc_config), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert line.startswith("sandbox SMSC listening on 127.0.0.1:"), line
        assert line.rstrip().endswith("; event loop: asyncio)"), line  # as `mailsms serve`
        port = int(line.split()[4].split(":")[1])
        bridge_config = tmp_path / "bridge.toml"
        bridge_config.write_text(
            f'database_url = "sqlite:///{tmp_path / "bridge.db"}"\ndemo = true\n'
            "[smtp]\nport = 0\n[sandbox]\nenabled = false\n"
            f'[mailer]\nmode = "maildir"\nmaildir = "{tmp_path / "maildir"}"\n'
            f'[[smsc]]\nname = "standalone"\nport = {port}\nsystem_id = "bench"\n'
            'password = "s3cret"\n[[routes]]\nprefix = ""\ntransports = ["standalone"]\n'
            "[dispatch]\npoll_interval = 0.2\n",
            encoding="utf-8",
        )
        settings = load_settings(bridge_config, environ={})
        async with running_bridge(settings) as (_, ep):
            async with aiosmtplib.SMTP(hostname=ep.smtp[0], port=ep.smtp[1]) as smtp:
                await smtp.sendmail(
                    "demo@example.com", ["+491701234567@eu.rsms.net"], make_mail(body="Hi there")
                )
            got = await wait_for(lambda: read_inbox(inbox, "+491701234567"), within=20)
            assert got[0].text == "Hi there"
    finally:
        if proc.returncode is None:
            proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 20)
        assert proc.returncode == 0, err.decode()
