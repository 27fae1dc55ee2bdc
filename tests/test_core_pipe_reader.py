"""The API process reads the engine core's step outputs whole, whatever event loop uvicorn runs on.

Found under load (a CPU server with async scheduling, 256 streams at once): uvloop puts a watched fd in
non-blocking mode, so a step output longer than what the pipe held at that moment failed half read with
EAGAIN, and the server took the core for dead and failed every request."""

from __future__ import annotations

import asyncio
import multiprocessing
import pickle
import threading

import pytest

from pagedllm.engine.core_client import PipeReader

BIG = 4 << 20  # four times the pipe's capacity: the writer must send it in pieces


def _send_all(sender, messages: list[bytes]) -> None:
    try:
        for message in messages:
            sender.send_bytes(pickle.dumps(message))
    except OSError:  # the reader gave up and closed its end
        pass


def _read_all(loop: asyncio.AbstractEventLoop, messages: list[bytes]) -> tuple[list[object], bool]:
    receiver, sender = multiprocessing.Pipe(duplex=False)
    received: list[object] = []
    eof = threading.Event()
    writer = threading.Thread(target=_send_all, args=(sender, messages), daemon=True)

    async def main() -> None:
        done = asyncio.Event()

        def handle(message: object) -> bool:
            received.append(message)
            if len(received) == len(messages):
                done.set()
            return True

        def on_eof() -> None:
            eof.set()
            done.set()

        reader = PipeReader(asyncio.get_running_loop(), receiver, handle, on_eof)
        writer.start()
        await asyncio.wait_for(done.wait(), timeout=60)
        reader.stop()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
        receiver.close()  # a writer still blocked on a full pipe gets EPIPE and ends
        writer.join(timeout=10)
        sender.close()
    return received, eof.is_set()


def _loops() -> list[tuple[str, object]]:
    loops: list[tuple[str, object]] = [("asyncio", asyncio.new_event_loop)]
    try:
        import uvloop
    except ImportError:
        return loops
    return [*loops, ("uvloop", uvloop.new_event_loop)]


@pytest.mark.parametrize(("name", "new_loop"), _loops(), ids=[name for name, _ in _loops()])
def test_messages_longer_than_the_pipe_arrive_whole_and_in_order(name, new_loop):
    messages = [b"a" * BIG, b"small", bytes(range(256)) * (BIG // 256), b"last"]
    received, eof = _read_all(new_loop(), messages)
    assert not eof, f"{name}: a message sent in pieces was taken for the writer's death"
    assert received == messages


def test_the_writer_closing_its_end_is_reported_once_as_eof():
    receiver, sender = multiprocessing.Pipe(duplex=False)
    calls: list[str] = []

    async def main() -> None:
        done = asyncio.Event()
        PipeReader(
            asyncio.get_running_loop(), receiver, lambda m: True, lambda: (calls.append("eof"), done.set())
        )
        sender.close()
        await asyncio.wait_for(done.wait(), timeout=10)
        await asyncio.sleep(0.05)

    asyncio.run(main())
    receiver.close()
    assert calls == ["eof"]
