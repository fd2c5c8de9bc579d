"""An SMSC that never sends a final receipt: the order ends after the receipt timeout.

The whole bridge against the fault peer, which answers every SMS with an ACCEPTD
receipt and never a final one. After the SMSC's receipt timeout the order is
"unconfirmed" (sent, no delivery report) and the sender gets the status mail its
policy asks for (the demo user: notify = all). The deadline is in the database, so
a restart in between changes nothing.
"""

from __future__ import annotations

from pathlib import Path

from tests.e2e.test_smpp_faults import PHONES, events, rows, send, settings_for, statuses
from tests.helpers import maildir_messages, running_bridge, wait_for
from tests.peers.smpp_fault import Faults, running_fault_smsc


async def test_no_final_receipt_is_unconfirmed_after_the_timeout_with_the_status_mail(
    tmp_path: Path,
) -> None:
    async with running_fault_smsc(Faults(final_receipts=False)) as peer:
        s = settings_for(tmp_path, {"a": peer.port}, receipt_timeout=3.0)
        async with running_bridge(s) as (_, ep):
            await send(ep.smtp, PHONES[:1])
            await wait_for(lambda: rows(tmp_path, "SELECT state FROM part") == [("accepted",)])
            assert list(statuses(tmp_path).values()) == ["submitted"]
        async with running_bridge(s):  # a restart while the order waits for its report
            await wait_for(lambda: list(statuses(tmp_path).values()) == ["unconfirmed"], 15)
            await wait_for(lambda: maildir_messages(tmp_path / "maildir"), 10)
    assert len(peer.submits) == 1
    ev = events(tmp_path)
    assert ev.index("submitted") < ev.index("receipt") < ev.index("unconfirmed")
    (mail,) = maildir_messages(tmp_path / "maildir")
    assert str(mail["Subject"]).startswith(f"SMS sent, no delivery report to {PHONES[0]}")
    body = mail.get_body(("plain",))
    assert body is not None
    text = body.get_content()
    assert "no delivery report came back" in text and "1 accepted" in text
