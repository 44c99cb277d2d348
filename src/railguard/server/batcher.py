"""Micro-batching: requests that arrive together share one call of a batch function on a worker thread.

The first waiting request holds the door for at most ``window_s`` (or until ``max_size`` items are waiting);
everything that queued while the previous call ran goes into the next call at once. The batch function
runs on one dedicated thread, so the event loop keeps serving while the model works, and calls never
overlap (ONNX Runtime already uses every core for one batch).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
R2 = TypeVar("R2")


class BatchTimeout(TimeoutError):
    """The batch function did not finish within the batcher's timeout."""


@dataclass(slots=True)
class _Job(Generic[T, R]):
    items: list[T]
    future: asyncio.Future[list[R]] = field(repr=False)


class MicroBatcher(Generic[T, R]):
    """``await batcher.submit(items)`` returns ``run(batch)``'s results for exactly these items, in order.

    ``run`` must return one result per item. When a merged call raises, each request's items are run again
    on their own, so one bad request cannot fail its neighbours; a call that times out is not retried.
    """

    def __init__(self, run: Callable[[list[T]], list[R]], *, window_s: float, max_size: int,
                 timeout_s: float | None = None, name: str = "batcher") -> None:
        self._run = run
        self.window_s = window_s
        self.max_size = max_size
        self.timeout_s = timeout_s
        self.name = name
        self.calls = 0  # batch function calls so far
        self.items = 0  # items passed to the batch function so far
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"railguard-{name}")
        self._pending: deque[_Job[T, R]] = deque()
        self._wake = asyncio.Event()  # binds to the running loop on first use
        self._task: asyncio.Task[None] | None = None
        self._busy_since: float | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name=f"railguard-{self.name}")

    async def stop(self) -> None:
        """Stop collecting; requests still waiting get a RuntimeError. Does not wait for a running call."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while self._pending:
            job = self._pending.popleft()
            if not job.future.done():
                job.future.set_exception(RuntimeError("the server is shutting down"))
        self._executor.shutdown(wait=False, cancel_futures=True)

    @property
    def stuck_for_s(self) -> float:
        """How long the current call has been running beyond the timeout (0 when none is)."""
        if self._busy_since is None or self.timeout_s is None:
            return 0.0
        return max(0.0, time.monotonic() - self._busy_since - self.timeout_s)

    async def submit(self, items: Sequence[T]) -> list[R]:
        if self._task is None:
            raise RuntimeError(f"{self.name} batcher is not running")
        if not items:
            return []
        job: _Job[T, R] = _Job(list(items), asyncio.get_running_loop().create_future())
        self._pending.append(job)
        self._wake.set()
        return await job.future

    async def run_alone(self, fn: Callable[[], R2]) -> R2:
        """Run ``fn()`` on the batcher's thread, between batches (for work that shares the thread's resources)."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._pending:
                self._wake.clear()
                await self._wake.wait()
            jobs = [self._pending.popleft()]
            size = len(jobs[0].items)
            deadline = loop.time() + self.window_s
            while size < self.max_size:
                if not self._pending:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), remaining)
                    except TimeoutError:
                        break
                    continue
                if size + len(self._pending[0].items) > self.max_size:
                    break
                job = self._pending.popleft()
                jobs.append(job)
                size += len(job.items)
            live = [j for j in jobs if not j.future.done()]  # a caller that went away needs no answer
            if live:
                await self._dispatch(live)

    async def _dispatch(self, jobs: list[_Job[T, R]]) -> None:
        try:
            results = await self._call([x for j in jobs for x in j.items])
        except BatchTimeout as exc:
            for job in jobs:
                _settle(job, exc=exc)
            return
        except Exception as exc:  # noqa: BLE001 - handed to each caller below
            if len(jobs) == 1:
                _settle(jobs[0], exc=exc)
                return
            for job in jobs:  # find the request that broke the merged call; the others still get answers
                try:
                    _settle(job, await self._call(job.items))
                except Exception as one:  # noqa: BLE001 - handed to this caller
                    _settle(job, exc=one)
            return
        start = 0
        for job in jobs:
            _settle(job, results[start:start + len(job.items)])
            start += len(job.items)

    async def _call(self, items: list[T]) -> list[R]:
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._timed_run, items)
        try:
            results = await asyncio.wait_for(future, self.timeout_s)
        except TimeoutError:
            raise BatchTimeout(f"{self.name} took longer than {self.timeout_s:g} s") from None
        if len(results) != len(items):
            raise RuntimeError(f"{self.name} returned {len(results)} results for {len(items)} items")
        return results

    def _timed_run(self, items: list[T]) -> list[R]:
        self._busy_since = time.monotonic()
        try:
            self.calls += 1
            self.items += len(items)
            return list(self._run(items))
        finally:
            self._busy_since = None


def _settle(job: _Job[T, R], results: list[R] | None = None, *, exc: BaseException | None = None) -> None:
    if job.future.done():
        return
    if exc is not None:
        job.future.set_exception(exc)
    else:
        job.future.set_result(results if results is not None else [])
