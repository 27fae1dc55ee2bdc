"""Cancel a request's handler when its client goes away before the answer is ready.

A streamed answer notices on its own (the next write fails and the stream aborts its engine requests),
but a whole answer is written only at the end: without this, a client that gave up leaves its request
generating, holding KV blocks and batch seats, to its last token.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request, Response

T = TypeVar("T")

# nginx's "client closed request": logged by uvicorn only; nobody is left to read it.
CLIENT_CLOSED_REQUEST = 499


async def _wait_for_disconnect(request: Request) -> None:
    # The body is read already (the endpoint parsed it), so the next message is the disconnect.
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(request: Request, answer: Awaitable[T]) -> T | Response:
    """``answer``'s result, or, if the client disconnects first, ``answer`` cancelled: its engine requests
    are aborted by the streams' clean-up (``merge_streams``)."""
    handler = asyncio.ensure_future(answer)
    watcher = asyncio.ensure_future(_wait_for_disconnect(request))
    try:
        await asyncio.wait({handler, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:  # also when this endpoint is cancelled itself (shutdown)
        watcher.cancel()
        if not handler.done():
            handler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await handler
    if handler.cancelled():
        return Response(status_code=CLIENT_CLOSED_REQUEST)
    return handler.result()
