"""A fourth SMSC for the tests: Perl's Net::SMPP (Debian libnet-smpp-perl), which we did not write.

`tests/peers/perl_smpp/smsc.pl` listens with `Net::SMPP->new_listen` on 127.0.0.1 port 0
and speaks the same JSON-lines protocol as the node peer (`ScriptSmsc`). Net::SMPP
decodes headers, addresses and TLVs but leaves short_message as octets (reported as
hex). `scripts/test-deps.sh` installs libnet-smpp-perl when missing.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from tests.peers.script_smsc import ScriptSmsc

PERL_DIR = Path(__file__).parent / "perl_smpp"


class PerlSmsc(ScriptSmsc):
    """The Net::SMPP SMSC."""

    name = "Net::SMPP SMSC"

    def __init__(self) -> None:
        super().__init__([shutil.which("perl") or "perl", "smsc.pl"], PERL_DIR)


@contextlib.asynccontextmanager
async def running_perl_smsc() -> AsyncIterator[PerlSmsc]:
    peer = PerlSmsc()
    try:
        await peer.start()
        yield peer
    finally:
        await peer.stop()
