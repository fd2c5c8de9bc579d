"""An IPv6 client is counted by its /64, through the real SMTP door.

A host given a /64 may use any of its 2**64 addresses; counted address by address, the
caps per client address held nothing against it. The test runs the bridge in a network
namespace of its own (`unshare --net`, as root, like the push resolver test), whose
loopback interface routes all of 2001:db8:0:1::/64 and 2001:db8:0:2::/64 to itself and
lets a socket bind any of their addresses, so that a client can connect from any
address of either block.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.conftest import make_settings
from tests.helpers import running_bridge
from tests.security.common import with_smtp
from tests.smtp_probe import RawSmtp

SERVER = "2001:db8:0:1::1"
SOURCES = ("2001:db8:0:1::a", "2001:db8:0:1:ffff::b", "2001:db8:0:1::c", "2001:db8:0:2::a")


async def _door(folder: str) -> None:
    """Run in the namespace: a bridge whose SMTP door takes 2 connections per client, and
    a connection from each of SOURCES held open; prints each one's greeting as JSON."""
    settings = with_smtp(make_settings(Path(folder)), host=SERVER, max_connections_per_ip=2)
    async with running_bridge(settings) as (_, ep):
        greetings: dict[str, str] = {}
        held = []
        for source in SOURCES:
            client = await RawSmtp.connect(ep.smtp[0], ep.smtp[1], local=source)
            held.append(client)
            greetings[source] = (await client.read_reply()).strip()
        for client in held:
            await client.close()
    print(json.dumps(greetings))


def test_a_third_address_of_one_64_is_refused_and_the_next_64_is_not(tmp_path: Path) -> None:
    probe = (
        "import asyncio, sys; from tests.security import test_ipv6_blocks as t; "
        "asyncio.run(t._door(sys.argv[1]))"
    )
    script = (
        "ip link set lo up && "
        f"ip -6 addr add {SERVER}/64 dev lo && "
        "ip -6 route add local 2001:db8:0:1::/64 dev lo && "
        "ip -6 route add local 2001:db8:0:2::/64 dev lo && "
        "sysctl -q -w net.ipv6.ip_nonlocal_bind=1 && "  # bind any address of those blocks
        f'exec "{sys.executable}" -c "{probe}" {tmp_path}'
    )
    done = subprocess.run(
        ["unshare", "--net", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    greetings = json.loads(done.stdout.strip().splitlines()[-1])
    first, second, third, elsewhere = (greetings[s] for s in SOURCES)
    assert first.startswith("220") and second.startswith("220"), greetings
    assert third.startswith("421 4.7.0"), greetings
    assert "counted with its 2001:db8:0:1::/64" in third, third
    assert elsewhere.startswith("220"), greetings  # another /64: a count of its own
