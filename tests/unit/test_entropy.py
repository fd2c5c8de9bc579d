"""Mail ids' random bits after a fork: `[server] processes` forks its children, and a
child must not draw the parent's bytes again (the same ids in the same millisecond)."""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection

from bridge.intake.entropy import random24


def _draw(out: Connection) -> None:
    out.send([random24() for _ in range(64)])
    out.close()


def test_a_forked_child_draws_its_own_bits() -> None:
    random24()  # the parent's pool holds bytes when it forks
    context = multiprocessing.get_context("fork")
    theirs: list[list[int]] = []
    for _ in range(2):
        receive, send = context.Pipe(duplex=False)
        child = context.Process(target=_draw, args=(send,))
        child.start()
        theirs.append(receive.recv())
        child.join(10)
        assert child.exitcode == 0
    ours = [random24() for _ in range(64)]
    assert theirs[0] != ours
    assert theirs[1] != ours
    assert theirs[0] != theirs[1]
