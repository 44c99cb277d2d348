"""The micro-batcher's waits and the audit log's group commit: an idle batcher sends a lone request at once, a
busy one lets the requests that arrive meanwhile share the next call, and a decision is acknowledged only once
the one transaction that holds it (with its neighbours') has committed."""

from __future__ import annotations

import asyncio
import threading

import pytest
from server_support import settings  # first: skips without the server extra

from conftest import FakeGuard
from railguard.audit import AuditRecord
from railguard.server.batcher import MicroBatcher
from railguard.server.errors import APIError
from railguard.server.runtime import Runtime

FOREVER_S = 3600.0  # a window no test could sit out


def _batcher(run, **options) -> MicroBatcher:
    return MicroBatcher(run, window_s=FOREVER_S, max_size=64, **options)


def test_an_idle_batcher_sends_a_lone_request_at_once_whatever_its_window():
    calls: list[list[str]] = []

    async def main():
        batcher = _batcher(lambda items: calls.append(list(items)) or [x.upper() for x in items])
        await batcher.start()
        try:
            for word in ("one", "two", "three"):  # each alone: none may wait for company
                assert await asyncio.wait_for(batcher.submit([word]), 30) == [word.upper()]
        finally:
            await batcher.stop()

    asyncio.run(main())
    assert calls == [["one"], ["two"], ["three"]]


def test_requests_arriving_while_a_call_runs_share_the_next_call():
    gate = threading.Event()
    calls: list[list[str]] = []

    def run(items):
        calls.append(list(items))
        if items == ["first"]:
            gate.wait(30)
        return [x.upper() for x in items]

    async def main():
        batcher = MicroBatcher(run, window_s=0.05, max_size=64)
        await batcher.start()
        try:
            first = asyncio.create_task(batcher.submit(["first"]))
            while not calls:
                await asyncio.sleep(0.001)
            rest = [asyncio.create_task(batcher.submit([w])) for w in ("a", "b", "c")]
            await asyncio.sleep(0.01)  # all three queued behind the running call
            gate.set()
            return await first, [await t for t in rest]
        finally:
            await batcher.stop()

    first, rest = asyncio.run(main())
    assert first == ["FIRST"] and rest == [["A"], ["B"], ["C"]]
    assert calls == [["first"], ["a", "b", "c"]]  # one call for the three that waited


class _GatedStore:
    """An audit store whose transactions wait for the test; it records what each one held and when it ended."""

    url = "memory://gated"

    def __init__(self) -> None:
        self.gates: list[threading.Event] = []
        self.started = threading.Semaphore(0)
        self.transactions: list[list[str]] = []
        self.committed: list[bool] = []
        self.fail = False

    def write(self, records):
        if self.fail and self.gates[-1].is_set():  # a failing disk fails at once (the retries of one request each)
            raise OSError("disk full")
        gate = threading.Event()
        self.gates.append(gate)
        self.started.release()
        gate.wait(30)
        if self.fail:
            raise OSError("disk full")
        self.transactions.append([r.request_id for r in records])
        self.committed.append(True)

    def salt(self) -> bytes:
        return b"salt"

    def check_writable(self) -> None:
        pass

    def close(self) -> None:
        pass


def _record(request_id: str) -> AuditRecord:
    return AuditRecord(time=0.0, request_id=request_id, item=0, endpoint="guard", key_id=None, guard="fake",
                       tier="fake", flagged=False, error=None)


@pytest.mark.parametrize("fails", [False, True])
def test_group_commit_acknowledges_each_decision_only_after_its_transaction(tmp_path, fails):
    store = _GatedStore()

    async def main():
        runtime = Runtime(settings(tmp_path), guard=FakeGuard(), store=store)
        await runtime.start()
        loop = asyncio.get_running_loop()
        try:
            first = asyncio.create_task(runtime.write([_record("r0")]))
            await loop.run_in_executor(None, store.started.acquire)  # r0's transaction is running
            rest = [asyncio.create_task(runtime.write([_record(f"r{i}"), _record(f"r{i}")])) for i in (1, 2, 3)]
            await asyncio.sleep(0.05)
            assert not any(t.done() for t in [first, *rest])  # nothing acknowledged before its commit
            store.gates[0].set()
            await first
            await loop.run_in_executor(None, store.started.acquire)  # the next transaction: the other three
            await asyncio.sleep(0.05)
            assert not any(t.done() for t in rest)
            store.fail = fails
            store.gates[1].set()
            return await asyncio.gather(*rest, return_exceptions=True)
        finally:
            for gate in store.gates:
                gate.set()
            await runtime.stop()

    outcomes = asyncio.run(main())
    if fails:  # the group failed, then each request's rows were tried alone: none was acknowledged
        assert all(isinstance(o, APIError) and o.status == 503 for o in outcomes)
        assert store.transactions == [["r0"]]
    else:
        assert outcomes == [None, None, None]
        assert store.transactions == [["r0"], ["r1", "r1", "r2", "r2", "r3", "r3"]]  # one transaction for three
