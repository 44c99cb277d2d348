"""Fair micro-batching: requests share calls of a batch function on worker threads, and a big request cannot
take the workers away from everyone else.

- **Chunks, round-robin.** A request's items are handed out in chunks of at most ``chunk_cost`` (at least one
  item). Each call takes one chunk from each waiting request, visiting the callers (``owner``: an API key; a
  request of its own without one) in turn, so a small request's wait is one chunk of each neighbour, not the
  whole of the biggest request.
- **A lane for small requests.** With ``light_cost`` set, a second worker thread takes only requests whose whole
  work costs at most that much, so they never wait behind a big chunk on the first thread.
- **No waiting for company when idle.** A call goes out at once when no other call is running; only under load
  (a call already running) does the first request hold the door for ``window_s`` so that others can share.
- **Deadlines.** A call slower than ``timeout_s`` fails with :class:`BatchTimeout` (the batch function is slow or
  stuck). A request still unanswered after ``request_timeout_s`` fails with :class:`Starved`; what it had not yet
  handed to a call is dropped, and so is the rest of a request whose call timed out or whose caller went away.
- **Budgets.** An owner with more than ``owner_budget`` of work waiting gets :class:`OverBudget` for a new request.
- **Steps.** With ``steps`` (``steps(batch)`` does ``run(batch)``'s work in short pieces: a generator that returns
  the results), the first thread runs its calls one step at a time, so no single step holds the CPU for long; while
  a call runs on the small requests' thread, the next step waits for it (at most as long as the last step took),
  so a small request does not share the CPU with a big one. A call whose callers have all gone stops at its next
  step.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
R2 = TypeVar("R2")

MAIN, LIGHT = 0, 1  # the lanes: any work / small requests only


class BatchTimeout(TimeoutError):
    """A call of the batch function did not finish within the batcher's timeout: the function is slow or stuck."""


class Starved(TimeoutError):
    """A request ran out of time while its work waited behind other requests' work (the function is healthy)."""


class OverBudget(Exception):
    """The caller already has as much work waiting as its budget allows."""


_MORE = object()  # a step's answer: the call has more steps to go


class _Abandoned(Exception):
    """A call whose callers had all gone by the time the thread reached it: not run."""


@dataclass(eq=False, slots=True)
class _Job(Generic[T, R]):
    items: list[T]
    costs: list[int]
    owner: Any  # whose turn this is: an API key id, or the job itself when it has no owner
    future: asyncio.Future[list[R]] = field(repr=False)
    results: list[Any] = field(default_factory=list)
    next: int = 0  # first item not yet handed to a call
    finished: int = 0  # items with a result
    running: int = 0  # calls in flight holding some of its items
    in_call: int = 0  # of those, calls the thread has started
    expired: bool = False  # its deadline passed while a call held its items

    @property
    def total_cost(self) -> int:
        return sum(self.costs)


class MicroBatcher(Generic[T, R]):
    """``await batcher.submit(items)`` returns ``run(batch)``'s results for exactly these items, in order.

    ``run`` must return one result per item. When a merged call raises, each request's part is run again on its
    own, so one bad request cannot fail its neighbours; a call that times out is not retried. ``cost`` weighs an
    item (default 1 each) for ``chunk_cost``, ``light_cost`` and ``owner_budget``.
    """

    def __init__(self, run: Callable[[list[T]], list[R]], *, window_s: float, max_size: int,
                 timeout_s: float | None = None, request_timeout_s: float | None = None,
                 cost: Callable[[T], int] | None = None, chunk_cost: int | None = None,
                 light_cost: int | None = None, owner_budget: int | None = None, name: str = "batcher",
                 steps: Callable[[list[T]], Generator[Any, None, list[R]]] | None = None) -> None:
        self._run = run
        self._steps = steps
        self.window_s = window_s
        self.max_size = max_size
        self.timeout_s = timeout_s
        self.request_timeout_s = request_timeout_s
        self.chunk_cost = chunk_cost
        self.light_cost = light_cost or None
        self.owner_budget = owner_budget
        self.name = name
        self._cost = cost or (lambda _: 1)
        self.calls = 0  # batch function calls so far
        self.steps = 0  # steps of those calls run so far (with ``steps``)
        self.items = 0  # items passed to the batch function so far
        self.dropped = 0  # items of timed-out or abandoned requests that were never run
        lanes = 2 if self.light_cost else 1
        self._executors = [ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"railguard-{name}-{lane}")
                           for lane in range(lanes)]
        # owner -> its jobs with items not yet handed out; the order of the owners is the round-robin order
        self._queues: OrderedDict[Any, deque[_Job[T, R]]] = OrderedDict()
        self._owner_cost: dict[Any, int] = {}  # owner -> cost of its unanswered jobs
        self._unanswered: set[_Job[T, R]] = set()
        self._wake = asyncio.Event()  # binds to the running loop on first use
        self._tasks: list[asyncio.Task[None]] = []
        self._busy_since: list[float | None] = [None] * lanes
        self._light_calls = 0  # calls of the small requests' lane handed to its thread and not yet answered
        self._light_done = asyncio.Event()
        self._last_step_s = 0.0

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._loop(lane), name=f"railguard-{self.name}-{lane}")
                       for lane in range(len(self._executors))]

    async def stop(self) -> None:
        """Stop collecting; unanswered requests (waiting, or in a running call) get a RuntimeError. Does not
        wait for a running call."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks = []
        for job in list(self._unanswered):  # waiting, or in a call that will not be awaited any more
            _settle(job, exc=RuntimeError("the server is shutting down"))
        self._queues.clear()
        for executor in self._executors:
            executor.shutdown(wait=False, cancel_futures=True)

    @property
    def stuck_for_s(self) -> float:
        """How long the longest running call has been running beyond the timeout (0 when none is)."""
        if self.timeout_s is None:
            return 0.0
        now = time.monotonic()
        return max([0.0] + [now - since - self.timeout_s for since in self._busy_since if since is not None])

    @property
    def waiting(self) -> int:
        """Items handed to no call yet."""
        return sum(len(job.items) - job.next for jobs in self._queues.values() for job in jobs)

    async def submit(self, items: Sequence[T], *, owner: Any = None) -> list[R]:
        """Results for ``items``; ``owner`` (e.g. an API key id) shares its turn and its budget with its other
        requests. Raises BatchTimeout, Starved, OverBudget, or what ``run`` raised for these items."""
        if not self._tasks:
            raise RuntimeError(f"{self.name} batcher is not running")
        if not items:
            return []
        loop = asyncio.get_running_loop()
        job: _Job[T, R] = _Job(list(items), [max(1, int(self._cost(x))) for x in items], None, loop.create_future())
        job.owner = owner if owner is not None else job
        job.results = [None] * len(job.items)
        if owner is not None and self.owner_budget is not None:
            queued = self._owner_cost.get(owner, 0)
            if queued and queued + job.total_cost > self.owner_budget:
                raise OverBudget(f"{queued:,} units of this caller's work are still waiting "
                                 f"(budget {self.owner_budget:,})")
        self._owner_cost[job.owner] = self._owner_cost.get(job.owner, 0) + job.total_cost
        self._unanswered.add(job)
        job.future.add_done_callback(lambda _: self._release(job))
        self._queues.setdefault(job.owner, deque()).append(job)
        self._wake.set()
        try:
            return await asyncio.wait_for(asyncio.shield(job.future), self.request_timeout_s)
        except TimeoutError:
            if job.future.done():
                return job.future.result()
            self._drop(job)
            if not job.in_call:
                _settle(job, exc=self._starved())
            else:  # a running call holds its items: that call decides (and is bounded by its own timeout)
                job.expired = True
            return await job.future
        finally:
            if not job.future.done():  # the caller went away: its remaining work is not worth doing
                self._drop(job)
                job.future.cancel()

    async def run_alone(self, fn: Callable[[], R2]) -> R2:
        """Run ``fn()`` on the batcher's first thread, between batches (for work that shares its resources)."""
        return await asyncio.get_running_loop().run_in_executor(self._executors[MAIN], fn)

    # ------------------------------------------------------------------------------------------ scheduling

    def _starved(self) -> Starved:
        after = f"{self.request_timeout_s:g} s" if self.request_timeout_s is not None else "its deadline"
        return Starved(f"{self.name}: no answer within {after}, waiting behind other requests")

    def _release(self, job: _Job[T, R]) -> None:
        self._unanswered.discard(job)
        left = self._owner_cost.get(job.owner, 0) - job.total_cost
        if left > 0:
            self._owner_cost[job.owner] = left
        else:
            self._owner_cost.pop(job.owner, None)

    def _drop(self, job: _Job[T, R]) -> None:
        """Hand none of the job's remaining items to a call."""
        jobs = self._queues.get(job.owner)
        if jobs is not None and job in jobs:
            jobs.remove(job)
            if not jobs:
                del self._queues[job.owner]
        self.dropped += len(job.items) - job.next
        job.next = len(job.items)

    def _fits_light(self, job: _Job[T, R]) -> bool:
        return job.next == 0 and self.light_cost is not None and job.total_cost <= self.light_cost

    def _has_work(self, lane: int) -> bool:
        if lane == MAIN:
            return bool(self._queues)
        return any(self._fits_light(job) for jobs in self._queues.values() for job in jobs)

    def _take(self, lane: int) -> list[tuple[_Job[T, R], int, int]]:
        """The next call: owners in turn, each with a share of ``chunk_cost`` from its next job, up to
        ``max_size`` items. The first item always goes (a text longer than the chunk goes alone); an owner whose
        next item does not fit keeps its place at the front for the next call."""
        parts: list[tuple[_Job[T, R], int, int]] = []
        size = total = 0
        budget = self.chunk_cost
        share = None if budget is None else max(1, budget // max(1, len(self._queues)))
        for owner in list(self._queues):
            if size >= self.max_size or (budget is not None and total >= budget):
                break
            jobs = self._queues[owner]
            job = next((j for j in jobs if lane == MAIN or self._fits_light(j)), None)
            if job is None:
                continue
            start = end = job.next
            mine = 0
            while end < len(job.items) and size < self.max_size:
                cost = job.costs[end]
                if budget is not None and size and (total + cost > budget or (
                        lane == MAIN and mine and mine + cost > share)):
                    break
                mine += cost
                total += cost
                end += 1
                size += 1
            if end == start:
                continue
            job.next = end
            parts.append((job, start, end))
            jobs.remove(job)
            if end < len(job.items):
                jobs.append(job)  # its next chunk waits for the other jobs of this owner
            if jobs:
                self._queues.move_to_end(owner)  # the next call starts with the owners after this one
            else:
                del self._queues[owner]
        return parts

    async def _loop(self, lane: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            while not self._has_work(lane):
                self._wake.clear()
                await self._wake.wait()
            if self.window_s > 0 and any(s is not None for s in self._busy_since) and self.waiting < self.max_size:
                # Under load: others are likely to arrive within the window and share this call.
                deadline = loop.time() + self.window_s
                while self.waiting < self.max_size and (remaining := deadline - loop.time()) > 0:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), remaining)
                    except TimeoutError:
                        break
            parts = [p for p in self._take(lane) if not p[0].future.done()]
            if parts:
                await self._dispatch(parts, lane)

    async def _dispatch(self, parts: list[tuple[_Job[T, R], int, int]], lane: int) -> None:
        for job, _, _ in parts:
            job.running += 1
        try:
            try:
                results = await self._call([x for job, a, b in parts for x in job.items[a:b]], lane,
                                           [job for job, _, _ in parts])
            except BatchTimeout as exc:
                for job, _, _ in parts:
                    self._fail(job, exc)
                return
            except _Abandoned:
                self.dropped += sum(b - a for _, a, b in parts)
                return
            except Exception as exc:  # noqa: BLE001 - handed to each caller below
                if len(parts) == 1:
                    self._fail(parts[0][0], exc)
                    return
                for job, a, b in parts:  # find the request that broke the merged call; the others still get answers
                    if job.future.done():
                        continue
                    try:
                        self._fill(job, a, await self._call(job.items[a:b], lane, [job]))
                    except Exception as one:  # noqa: BLE001 - handed to this caller
                        self._fail(job, one)
                return
            start = 0
            for job, a, b in parts:
                self._fill(job, a, results[start:start + b - a])
                start += b - a
        finally:
            for job, _, _ in parts:
                job.running -= 1
                if job.expired and not job.running and not job.future.done():
                    _settle(job, exc=self._starved())

    def _fill(self, job: _Job[T, R], start: int, results: list[R]) -> None:
        job.results[start:start + len(results)] = results
        job.finished += len(results)
        if job.finished == len(job.items):
            _settle(job, job.results)

    def _fail(self, job: _Job[T, R], exc: BaseException) -> None:
        self._drop(job)
        _settle(job, exc=exc)

    async def _call(self, items: list[T], lane: int, jobs: Sequence[_Job[T, R]] = ()) -> list[R]:
        """``run(items)`` on the lane's thread; the timeout counts from when the thread starts it, so a call
        queued behind a stuck one is not blamed for it."""
        loop = asyncio.get_running_loop()
        started = loop.create_future()

        def run() -> list[R]:
            if jobs and all(job.future.done() for job in jobs):  # every caller timed out or left while it queued
                raise _Abandoned
            loop.call_soon_threadsafe(_started, started, jobs)
            return self._timed_run(items, lane)

        def run_first(steps: Generator[Any, None, list[R]]) -> Any:
            if jobs and all(job.future.done() for job in jobs):
                raise _Abandoned
            loop.call_soon_threadsafe(_started, started, jobs)
            return self._timed_step(steps)

        self.calls += 1
        self.items += len(items)
        if lane == MAIN and self._steps is not None:
            steps = self._steps(items)
            future = loop.run_in_executor(self._executors[lane], lambda: run_first(steps))
        else:
            steps = None
            future = loop.run_in_executor(self._executors[lane], run)
        if lane == LIGHT:
            self._light_calls += 1
        await asyncio.wait([started, future], return_when=asyncio.FIRST_COMPLETED)
        try:
            results = await asyncio.wait_for(future, self.timeout_s)
            while steps is not None and results is _MORE:
                results = await self._next_step(steps, jobs)
        except TimeoutError:
            raise BatchTimeout(f"{self.name} took longer than {self.timeout_s:g} s") from None
        finally:
            for job in jobs:
                job.in_call -= 1 if started.done() else 0
            if lane == LIGHT:
                self._light_calls -= 1
                self._light_done.set()
        if len(results) != len(items):
            raise RuntimeError(f"{self.name} returned {len(results)} results for {len(items)} items")
        return results

    async def _next_step(self, steps: Generator[Any, None, list[R]], jobs: Sequence[_Job[T, R]]) -> Any:
        """The call's next step on the first thread, after any running call of the small requests (waiting at most
        as long as a step took); _Abandoned when all its callers have gone."""
        if self._light_calls:
            self._light_done.clear()
            try:
                await asyncio.wait_for(self._light_done.wait(), self._last_step_s)
            except TimeoutError:
                pass
        if jobs and all(job.future.done() for job in jobs):
            steps.close()
            raise _Abandoned
        future = asyncio.get_running_loop().run_in_executor(self._executors[MAIN], self._timed_step, steps)
        return await asyncio.wait_for(future, self.timeout_s)

    def _timed_step(self, steps: Generator[Any, None, list[R]]) -> Any:
        """One step: _MORE, or the call's results after its last step."""
        start = self._busy_since[MAIN] = time.monotonic()
        self.steps += 1
        try:
            next(steps)
            return _MORE
        except StopIteration as done:
            return list(done.value)
        finally:
            self._busy_since[MAIN] = None
            self._last_step_s = time.monotonic() - start

    def _timed_run(self, items: list[T], lane: int) -> list[R]:
        self._busy_since[lane] = time.monotonic()
        try:
            return list(self._run(items))
        finally:
            self._busy_since[lane] = None


def _started(started: asyncio.Future[None], jobs: Sequence[_Job[Any, Any]]) -> None:
    if not started.done():
        started.set_result(None)
        for job in jobs:
            job.in_call += 1


def _settle(job: _Job[T, R], results: list[R] | None = None, *, exc: BaseException | None = None) -> None:
    if job.future.done():
        return
    if exc is not None:
        job.future.set_exception(exc)
    else:
        job.future.set_result(list(results) if results is not None else [])
