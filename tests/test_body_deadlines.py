"""The body time limit's shared deadlines (``app.middleware.BodyDeadlines``), in one event loop.

No server and no database: the middleware is driven with hand-made ASGI ``receive`` and
``send`` callables. The end-to-end behaviour (408, connection closed, every route) is checked
against a real server in ``test_stalled_requests.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from app.middleware import BodyDeadlines, BodyLimitMiddleware, Message

LIMIT = 0.05


def _scope() -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/occurrences",
        "headers": [(b"content-type", b"application/json")],
    }


class _Recorder:
    """The inner application: records the body it was given."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        message = await receive()
        self.bodies.append(message["body"])


def _middleware(inner: Any) -> BodyLimitMiddleware:
    return BodyLimitMiddleware(inner, max_body=1000, max_batch_body=1000, body_timeout=LIMIT)


def test_a_body_that_stops_arriving_is_answered_408() -> None:
    async def scenario() -> list[Message]:
        sent: list[Message] = []
        first = True

        async def receive() -> Message:
            nonlocal first
            if first:
                first = False
                return {"type": "http.request", "body": b'{"a":', "more_body": True}
            await asyncio.Event().wait()  # the rest never comes
            raise AssertionError("unreachable")

        async def send(message: Message) -> None:
            sent.append(message)

        inner = _Recorder()
        await _middleware(inner)(_scope(), receive, send)
        assert inner.bodies == []
        return sent

    sent = asyncio.run(asyncio.wait_for(scenario(), timeout=30))
    assert sent[0]["status"] == 408
    assert (b"connection", b"close") in sent[0]["headers"]
    assert orjson.loads(sent[1]["body"])["error"]["code"] == "request_timeout"


def test_a_body_in_several_reads_within_the_limit_is_passed_whole() -> None:
    async def scenario() -> list[bytes]:
        parts = [b'{"a":', b" 1", b"}"]

        async def receive() -> Message:
            await asyncio.sleep(LIMIT / 10)
            body = parts.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(parts)}

        async def send(message: Message) -> None:
            raise AssertionError(f"nothing is answered by the middleware: {message}")

        inner = _Recorder()
        await _middleware(inner)(_scope(), receive, send)
        # Past the limit now: a deadline left behind would cancel nothing (it is gone).
        await asyncio.sleep(LIMIT * 2)
        return inner.bodies

    assert asyncio.run(scenario()) == [b'{"a": 1}']


def test_another_cancellation_during_the_read_goes_on() -> None:
    async def scenario() -> None:
        reading = asyncio.Event()

        async def receive() -> Message:
            reading.set()
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

        async def send(message: Message) -> None:
            raise AssertionError(f"a cancelled request is not answered: {message}")

        task = asyncio.create_task(_middleware(_Recorder())(_scope(), receive, send))
        await reading.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_the_timer_stops_when_no_body_is_being_read() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        deadlines = BodyDeadlines(loop, step=0.001)
        task = asyncio.current_task()
        assert task is not None
        deadlines.add(task, 60.0)
        assert deadlines._timer is not None
        deadlines.discard(task)
        await asyncio.sleep(0.01)
        assert deadlines._timer is None
        assert not deadlines.expired(task)

    asyncio.run(scenario())


def test_only_late_tasks_are_cancelled() -> None:
    async def scenario() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        deadlines = BodyDeadlines(loop, step=0.001)
        late = asyncio.create_task(asyncio.sleep(10))
        on_time = asyncio.create_task(asyncio.sleep(10))
        deadlines.add(late, 0.0)
        deadlines.add(on_time, 60.0)
        await asyncio.sleep(0.01)
        result = (late.cancelled(), on_time.done())
        on_time.cancel()
        deadlines.discard(on_time)
        return result

    assert asyncio.run(scenario()) == (True, False)
