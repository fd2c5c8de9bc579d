"""A small authoritative DNS server on loopback (UDP, dnspython wire format) for MX tests.

`zone` maps a name to its records, e.g. `{"partner.test": [("MX", "10 mx1.partner.test.")],
"mx1.partner.test": [("A", "127.0.0.1")]}`. A name that is not in the zone gets NXDOMAIN,
a name without records of the asked type an empty NOERROR answer, `servfail` names a
SERVFAIL. Every question is recorded in `queries`.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

Zone = dict[str, list[tuple[str, str]]]


@dataclass
class DnsServer(asyncio.DatagramProtocol):
    zone: Zone
    servfail: set[str] = field(default_factory=set)
    queries: list[tuple[str, str]] = field(default_factory=list)
    transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | bytes, int]) -> None:
        query = dns.message.from_wire(data)
        response = self.answer(query)
        assert self.transport is not None
        self.transport.sendto(response.to_wire(), addr)

    def answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries.append((name, rdtype))
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response
        if name not in self.zone:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response
        values = [v for t, v in self.zone[name] if t == rdtype]
        if values:
            response.answer.append(
                dns.rrset.from_text_list(question.name, 300, dns.rdataclass.IN, rdtype, values)
            )
        return response


@asynccontextmanager
async def dns_server(
    zone: Zone, *, servfail: set[str] | None = None, port: int = 0
) -> AsyncIterator[DnsServer]:
    """The server on 127.0.0.1 at `port` (by default a free UDP port: `port_of(server)`)."""
    loop = asyncio.get_running_loop()
    server = DnsServer(zone, servfail or set())
    transport, _ = await loop.create_datagram_endpoint(
        lambda: server, local_addr=("127.0.0.1", port)
    )
    try:
        yield server
    finally:
        transport.close()


def port_of(server: DnsServer) -> int:
    assert server.transport is not None
    return int(server.transport.get_extra_info("sockname")[1])


def run_behind_resolver(module: str, function: str, folder: Path) -> Any:
    """`asyncio.run(module.function(str(folder)))` in a network and mount namespace of
    its own whose resolv.conf names 127.0.0.1 (the function starts `dns_server(...,
    port=53)` there, or leaves it silent); what its last printed line says, as JSON."""
    conf = folder / "resolv.conf"
    conf.write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    probe = (
        f"import asyncio, sys; from {module} import {function} as f; asyncio.run(f(sys.argv[1]))"
    )
    script = (
        f"ip link set lo up && mount --bind {conf} /etc/resolv.conf && "
        f'exec "{sys.executable}" -c "{probe}" {folder}'
    )
    done = subprocess.run(
        ["unshare", "--mount", "--net", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
