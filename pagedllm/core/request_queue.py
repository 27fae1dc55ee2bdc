"""The waiting queue: FCFS by arrival, preempted requests put back in their arrival place, O(1) removal."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from pagedllm.core.request import Request


class WaitingQueue:
    """A deque whose removals are lazy: a removed request is skipped when it reaches the front.

    NOTE: ``deque.remove`` is O(n); aborting from a long queue must not be, so ``remove`` only forgets
    the request and ``peek``/``popleft`` discard forgotten entries as they surface. Membership is by
    object, not by id: an id can be reused by a new request while the removed one still sits in the
    deque, and that old entry must stay dead.
    """

    def __init__(self) -> None:
        self._queue: deque[Request] = deque()
        self._members: dict[str, Request] = {}

    def append(self, request: Request) -> None:
        self._queue.append(request)
        self._members[request.request_id] = request

    def insert_in_arrival_order(self, request: Request) -> None:
        """Put a preempted request back ahead of every request that arrived after it.

        NOTE: a linear scan, but from the front, where preempted (old) requests belong; preemption is rare.
        """
        index = next(
            (i for i, queued in enumerate(self._queue) if queued.arrival_order > request.arrival_order),
            len(self._queue),
        )
        self._queue.insert(index, request)
        self._members[request.request_id] = request

    def remove(self, request_id: str) -> bool:
        """Drop a request by id; returns whether it was queued."""
        return self._members.pop(request_id, None) is not None

    def peek(self) -> Request:
        self._drop_removed_front()
        return self._queue[0]

    def popleft(self) -> Request:
        self._drop_removed_front()
        request = self._queue.popleft()
        del self._members[request.request_id]
        return request

    def _is_queued(self, request: Request) -> bool:
        return self._members.get(request.request_id) is request

    def _drop_removed_front(self) -> None:
        while self._queue and not self._is_queued(self._queue[0]):
            self._queue.popleft()

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._members

    def __len__(self) -> int:
        return len(self._members)

    def __bool__(self) -> bool:
        return bool(self._members)

    def __iter__(self) -> Iterator[Request]:
        return (r for r in self._queue if self._is_queued(r))
