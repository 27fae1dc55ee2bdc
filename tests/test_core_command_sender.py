"""The API process's commands to the engine core: batched per event-loop tick, but never held back for
a whole burst (a tick of 256 request handlers takes ~250 ms, and the core would idle meanwhile)."""

from __future__ import annotations

import asyncio
import multiprocessing

from pagedllm.engine.core_client import MAX_COMMANDS_PER_MESSAGE, CommandSender
from pagedllm.engine.core_messages import AbortRequests


def _messages_of_one_tick(num_commands: int) -> list[list[str]]:
    """Queue ``num_commands`` aborts within one tick; the request ids of each message, in order."""
    receiver, sender_end = multiprocessing.Pipe(duplex=False)
    sender = CommandSender(sender_end)

    async def one_tick() -> None:
        sender.bind(asyncio.get_running_loop())
        for i in range(num_commands):
            sender.send(AbortRequests([str(i)]))
        await asyncio.sleep(0)  # the tick ends: the scheduled flush runs

    asyncio.run(one_tick())
    sender.close()
    messages = []
    while sum(len(m) for m in messages) < num_commands:
        assert receiver.poll(5), "the writer thread sent fewer commands than were queued"
        messages.append([command.request_ids[0] for command in receiver.recv()])
    assert not receiver.poll(0.1), "more messages than commands"
    return messages


def test_a_burst_in_one_tick_leaves_in_bounded_messages_in_order():
    n = 2 * MAX_COMMANDS_PER_MESSAGE + 3
    messages = _messages_of_one_tick(n)
    assert [len(m) for m in messages] == [MAX_COMMANDS_PER_MESSAGE, MAX_COMMANDS_PER_MESSAGE, 3]
    assert [i for m in messages for i in m] == [str(i) for i in range(n)]


def test_a_few_commands_in_one_tick_leave_as_one_message():
    assert _messages_of_one_tick(3) == [["0", "1", "2"]]


def test_commands_before_serving_leave_one_by_one():
    receiver, sender_end = multiprocessing.Pipe(duplex=False)
    sender = CommandSender(sender_end)
    sender.send(AbortRequests(["a"]))
    sender.send(AbortRequests(["b"]))
    sender.close()
    assert receiver.poll(5) and receiver.recv() == [AbortRequests(["a"])]
    assert receiver.poll(5) and receiver.recv() == [AbortRequests(["b"])]
