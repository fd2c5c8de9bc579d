"""Text engine benchmark: mails/s through parse + clean + encode + split on the test corpus."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from bridge.text.clean import CleanRules, clean
from bridge.text.pipeline import bench_corpus, render

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "corpus"
ROUNDS = 200


def _is_html_only(raw: bytes) -> bool:
    head = raw.lower()
    return b"text/html" in head and b"text/plain" not in head


def _big_html_mail() -> bytes:
    """A long Outlook thread as HTML (about 200 KB): paragraphs, a signature table, quotes."""
    block = (
        '<p class="MsoNormal">Die Anlage in Halle&nbsp;3 meldet „Störung“ – bitte prüfen.'
        "<o:p></o:p></p><table><tr><td><b>Karl Meier</b><br>Leitstand Nord</td>"
        "<td>Tel. +49 40 1234567</td></tr></table>"
        '<div style="border-top:solid #E1E1E1 1.0pt"><p><b>Von:</b> Jan<br>'
        "<b>Gesendet:</b> Montag<br><b>An:</b> Karl</p></div>"
    )
    html = "<html><body>" + block * 700 + "</body></html>"
    return (
        "From: a@example.com\r\nSubject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html
    ).encode()


def _hostile_bodies() -> dict[str, str]:
    """Bodies shaped to make the cleaning rules backtrack or rescan (200 KB each)."""
    bodies = {
        "reply headers": "a\nOn 1 Jan, B wrote:\n> q\n\nb\n",
        "dated 'On' lines": "On " + "1 " * 150 + "\n",
        "separators": "-" * 30 + "\n" + "From: x\n" * 3 + "text\n",
        "verb lines": "Bob wrote some things and then wrote:\nno quote\n",
        "closing lines": "Best regards\nKarl Meier\n",
    }
    return {name: (unit * (200_000 // len(unit) + 1))[:200_000] for name, unit in bodies.items()}


def main() -> int:
    raws = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]
    if not raws:
        print(f"text_bench: no corpus in {CORPUS}", file=sys.stderr)
        return 1
    bench_corpus(raws, rounds=2)  # warm-up
    result = bench_corpus(raws, rounds=ROUNDS)
    print(
        f"text engine: {result.mails} mails ({len(raws)} corpus mails x {ROUNDS}) in "
        f"{result.seconds:.2f} s = {result.per_second:,.0f} mails/s "
        f"({1e6 / result.per_second:.0f} us/mail; {result.rejected} refused by policy)"
    )
    html = [r for r in raws if _is_html_only(r)]
    if html:
        result = bench_corpus(html, rounds=ROUNDS)
        print(
            f"  HTML-only mails: {len(html)} corpus mails, {result.per_second:,.0f} mails/s "
            f"({1e6 / result.per_second:.0f} us/mail)"
        )
    big = _big_html_mail()
    start = time.perf_counter()
    for _ in range(3):
        render(big)
    took = (time.perf_counter() - start) / 3
    print(f"  one {len(big) // 1024} KB HTML mail: {took * 1000:.0f} ms")
    worst = ("", 0.0)
    for name, body in _hostile_bodies().items():
        start = time.perf_counter()
        clean(body, CleanRules())
        worst = max(worst, (name, time.perf_counter() - start), key=lambda w: w[1])
    print(f"  slowest hostile 200 KB body ({worst[0]}): {worst[1] * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
