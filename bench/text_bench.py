"""Text engine benchmark: mails/s through parse + clean + encode + split on the test corpus."""

from __future__ import annotations

import sys
from pathlib import Path

from bridge.text.pipeline import bench_corpus

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "data" / "corpus"


def main() -> int:
    raws = [p.read_bytes() for p in sorted(CORPUS.glob("*.eml"))]
    if not raws:
        print(f"text_bench: no corpus in {CORPUS}", file=sys.stderr)
        return 1
    bench_corpus(raws, rounds=2)  # warm-up
    result = bench_corpus(raws, rounds=200)
    print(
        f"text engine: {result.mails} mails ({len(raws)} corpus mails x 200) in "
        f"{result.seconds:.2f} s = {result.per_second:,.0f} mails/s "
        f"({1e6 / result.per_second:.0f} us/mail; {result.rejected} refused by policy)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
