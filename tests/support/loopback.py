"""A uvicorn server on a loopback socket inside a test's event loop, and a raw conversation with it:
for the tests that hold the listener's own paths to uvicorn's answers byte for byte."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn


@asynccontextmanager
async def uvicorn_on(config: uvicorn.Config, sock: socket.socket) -> AsyncIterator[int]:
    """Serve `config` on the bound `sock` until the block ends; yields the port."""
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield int(sock.getsockname()[1])
    finally:
        server.should_exit = True
        await task


async def converse(port: int, data: bytes) -> bytes:
    """Send `data` and read until the server closes or stays quiet for 0.3 s; Date values blanked."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    received = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 0.3):
            received += chunk
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()
    return re.sub(rb"(?im)^date: [^\r]*", b"date: -", received)


async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, byte: bytes) -> float:
    """Send `byte` every 0.3 s (so the connection is never silent for a deadline) until the server ends
    the connection, 3 s at most; the seconds that took."""
    started = asyncio.get_running_loop().time()
    for _ in range(10):
        try:
            if await asyncio.wait_for(reader.read(1), 0.3) == b"":
                break  # EOF: the server ended the connection
        except TimeoutError:
            pass
        except ConnectionError:
            break
        with contextlib.suppress(ConnectionError):
            writer.write(byte)
    return asyncio.get_running_loop().time() - started
