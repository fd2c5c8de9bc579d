#!/usr/bin/env python3
"""Replay a SAPconnect BC-SMTP session against a running bridge and print the DSN that comes back.

It plays both SAP roles: the SMTP node that sends (EHLO with the SCOT default domain,
STARTTLS, `MAIL FROM:<…> RET=HDRS ENVID=…`, `RCPT TO:<SMS=+49…@domain>
NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;…`, a text/plain body in the node's code page),
and the ICM inbound SMTP port that receives the delivery status notification.

    python examples/sap_bc_smtp/replay.py                    # against `make run CONFIG=…`
    python examples/sap_bc_smtp/replay.py --no-tls --to +491701234567

Exit status 0 when a DSN came back whose Final-Recipient is the SMS= address and
whose Original-Envelope-Id matches; 1 otherwise (the reason is printed).
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import secrets
import ssl
import sys
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope

SAMPLE = Path(__file__).parent / "samples" / "alert.eml"


@dataclass
class Inbound:
    """SAP's inbound SMTP (ICM PROT=SMTP): collects the mails the bridge sends back."""

    mails: list[tuple[Envelope, Message]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.mails.append((envelope, message))
        self.arrived.set()
        return "250 2.0.0 OK"


@dataclass(frozen=True)
class Report:
    queued_reply: str
    dsn: Message | None
    fields: dict[str, str]
    problems: tuple[str, ...]


async def _reply(reader: asyncio.StreamReader) -> str:
    lines = []
    while True:
        line = (await asyncio.wait_for(reader.readline(), 30)).decode()
        if not line:
            raise ConnectionError("the bridge closed the connection")
        lines.append(line.rstrip())
        if line[3:4] != "-":
            return "\n".join(lines)


async def _expect(
    writer: asyncio.StreamWriter, reader: asyncio.StreamReader, line: str, code: str
) -> str:
    print(f"C: {line}")
    writer.write(line.encode() + b"\r\n")
    await writer.drain()
    answer = await _reply(reader)
    print("S: " + answer.replace("\n", "\nS: "))
    if not answer.startswith(code):
        raise RuntimeError(f"expected {code} after {line.split()[0]}, got: {answer}")
    return answer


def xtext(value: str) -> str:
    """RFC 3461 xtext: '+', '=' and anything outside printable ASCII become +XX."""
    return "".join(c if "!" <= c <= "~" and c not in "+=" else f"+{ord(c):02X}" for c in value)


def delivery_fields(dsn: Message) -> dict[str, str]:
    """The per-message and per-recipient fields of a delivery-status report."""
    found: dict[str, str] = {}
    for part in dsn.walk():
        if part.get_content_type() == "message/delivery-status":
            for block in part.get_payload():
                assert isinstance(block, Message)
                found.update({k: str(v) for k, v in block.items()})
    return found


async def replay(
    *,
    host: str,
    port: int,
    sender: str,
    to: str,
    domain: str,
    listen_port: int,
    tls: ssl.SSLContext | None,
    wait: float,
) -> Report:
    inbound = Inbound()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(inbound, hostname="sap-icm.example"), "127.0.0.1", listen_port
    )
    envid = f"SAP{secrets.token_hex(6).upper()}"
    rcpt = f"SMS={to}@{domain}"
    message_id = f"<{secrets.token_hex(8)}@sap.example>"
    body = (
        SAMPLE.read_bytes()
        .replace(b"<MESSAGE-ID>", message_id.encode())
        .replace(b"<RCPT>", rcpt.encode())
    )
    body = body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    try:
        reader, writer = await asyncio.open_connection(host, port)
        print("S: " + await _reply(reader))
        await _expect(writer, reader, "EHLO sap.example", "250")
        if tls is not None:
            await _expect(writer, reader, "STARTTLS", "220")
            await writer.start_tls(tls, server_hostname=host)
            await _expect(writer, reader, "EHLO sap.example", "250")
        await _expect(writer, reader, f"MAIL FROM:<{sender}> RET=HDRS ENVID={envid}", "250")
        await _expect(
            writer,
            reader,
            f"RCPT TO:<{rcpt}> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;{xtext(rcpt)}",
            "250",
        )
        await _expect(writer, reader, "DATA", "354")
        print(f"C: <{len(body)} bytes of SAP message, then .>")
        writer.write(body + b".\r\n")
        await writer.drain()
        queued = await _reply(reader)
        print(f"S: {queued}")
        await _expect(writer, reader, "QUIT", "221")
        writer.close()
        deadline = loop.time() + wait
        dsn = None
        while dsn is None and loop.time() < deadline:
            for _, mail in inbound.mails:
                if mail.get_content_type() == "multipart/report":
                    dsn = mail
            if dsn is None:
                inbound.arrived.clear()
                try:
                    await asyncio.wait_for(inbound.arrived.wait(), max(0.0, deadline - loop.time()))
                except TimeoutError:
                    break
    finally:
        server.close()
    problems = []
    fields = delivery_fields(dsn) if dsn is not None else {}
    if not queued.startswith("250"):
        problems.append(f"the bridge did not accept the mail: {queued}")
    if dsn is None:
        problems.append(f"no DSN arrived within {wait:.0f} s")
    else:
        if fields.get("Action") != "delivered":
            problems.append(f"Action is {fields.get('Action')!r}, expected 'delivered'")
        if fields.get("Final-Recipient", "").split(";", 1)[-1].strip() != rcpt:
            problems.append(
                f"Final-Recipient is {fields.get('Final-Recipient')!r}, expected {rcpt}"
            )
        if fields.get("Original-Envelope-Id") != envid:
            problems.append(
                f"Original-Envelope-Id is {fields.get('Original-Envelope-Id')!r}, expected {envid}"
            )
        if dsn.get("In-Reply-To") != message_id:
            problems.append(f"In-Reply-To is {dsn.get('In-Reply-To')!r}, expected {message_id}")
    return Report(queued, dsn, fields, tuple(problems))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--host", default="127.0.0.1", help="the bridge's SMTP host (default 127.0.0.1)"
    )
    parser.add_argument(
        "--port", type=int, default=2525, help="the bridge's SMTP port (default 2525)"
    )
    parser.add_argument(
        "--from", dest="sender", default="demo@example.com", help="envelope sender (a bridge user)"
    )
    parser.add_argument(
        "--to", default="+491701234567", help="the SMS recipient in international form"
    )
    parser.add_argument(
        "--domain", default="eu.rsms.net", help="the bridge's SMS domain (SCOT address conversion)"
    )
    parser.add_argument(
        "--listen-port", type=int, default=2526, help="where SAP's inbound SMTP listens for the DSN"
    )
    parser.add_argument("--no-tls", action="store_true", help="do not use STARTTLS")
    parser.add_argument(
        "--ca", type=Path, help="CA certificate to verify the bridge (default: do not verify)"
    )
    parser.add_argument("--wait", type=float, default=30.0, help="seconds to wait for the DSN")
    args = parser.parse_args()
    tls = None
    if not args.no_tls:
        tls = (
            ssl.create_default_context(cafile=str(args.ca))
            if args.ca
            else ssl.create_default_context()
        )
        if not args.ca:
            tls.check_hostname = False
            tls.verify_mode = ssl.CERT_NONE
    try:
        report = asyncio.run(
            replay(
                host=args.host,
                port=args.port,
                sender=args.sender,
                to=args.to,
                domain=args.domain,
                listen_port=args.listen_port,
                tls=tls,
                wait=args.wait,
            )
        )
    except (OSError, RuntimeError, TimeoutError) as exc:
        print(f"PROBLEM: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    if report.dsn is not None:
        print("\n--- DSN received by SAP's inbound SMTP ---")
        print(report.dsn.as_string(policy=email.policy.default.clone(linesep="\n")))
        print("--- delivery-status fields ---")
        for name, value in report.fields.items():
            print(f"{name}: {value}")
    for problem in report.problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    return 1 if report.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
