"""The worker loop: no step that would find nothing, wake-ups that come together are one,
a settling wake-up gathers what arrives meanwhile, the poll tick still steps."""

from __future__ import annotations

import asyncio

from bridge.db.worker import Worker


class Queue:
    """Rows due, handled at most `batch` per step; each step is recorded."""

    def __init__(self, batch: int = 10) -> None:
        self.due = 0
        self.batch = batch
        self.steps: list[int] = []

    async def step(self) -> int:
        await asyncio.sleep(0.001)  # the claim's round trip
        taken = min(self.due, self.batch)
        self.due -= taken
        self.steps.append(taken)
        return taken

    def more(self) -> bool:
        return bool(self.steps) and self.steps[-1] >= self.batch


async def _running(worker: Worker, seconds: float) -> None:
    task = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(seconds)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_a_step_whose_batch_was_not_full_is_not_followed_by_an_empty_one() -> None:
    async def main() -> list[int]:
        q = Queue()
        worker = Worker("w", q.step, 60.0, more=q.more)
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.02)  # the first step at start finds nothing
        q.due = 3
        worker.wake()
        await asyncio.sleep(0.05)
        q.due = 25  # two full batches and a rest: stepped at once until the rest
        worker.wake()
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert worker.counts["idle_steps"] == 1
        return q.steps

    assert asyncio.run(main()) == [0, 3, 10, 10, 5]


def test_without_more_a_handled_step_is_followed_by_another() -> None:
    async def main() -> list[int]:
        q = Queue()
        worker = Worker("w", q.step, 60.0)
        q.due = 3
        await _running(worker, 0.05)
        return q.steps

    assert asyncio.run(main()) == [3, 0]


def test_wake_ups_during_a_step_make_one_more_step() -> None:
    async def main() -> list[int]:
        q = Queue(batch=1000)
        worker = Worker("w", q.step, 60.0, more=q.more)

        async def producer() -> None:
            for _ in range(50):  # each commit wakes the worker, many per step
                q.due += 1
                worker.wake()
                await asyncio.sleep(0)

        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.02)
        await producer()
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert worker.counts["wakeups"] == 50
        return q.steps

    steps = asyncio.run(main())
    assert sum(steps) == 50
    # far fewer steps than wake-ups: a step, and one more for the wake-ups during it
    assert len(steps) <= 4, steps


def test_a_settling_wake_up_gathers_what_arrives_meanwhile_in_one_step() -> None:
    async def main() -> list[int]:
        q = Queue(batch=1000)
        worker = Worker("w", q.step, 60.0, more=q.more, settle=0.05)
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.02)
        for _ in range(20):
            q.due += 1
            worker.wake()
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return q.steps

    assert asyncio.run(main()) == [0, 20]


def test_the_poll_tick_steps_without_a_wake_up() -> None:
    async def main() -> list[int]:
        q = Queue()
        worker = Worker("w", q.step, 0.02, more=q.more)
        task = asyncio.create_task(worker.run())
        await asyncio.sleep(0.005)
        q.due = 4  # a deferred row that became due: nobody wakes the worker
        await asyncio.sleep(0.06)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return q.steps

    steps = asyncio.run(main())
    assert steps[0] == 0 and 4 in steps and sum(steps) == 4
