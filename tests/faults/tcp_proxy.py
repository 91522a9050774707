"""A TCP proxy the test controls, between the bot and PostgreSQL: the database can be
taken away (connections cut, new ones refused) and given back, or a connection cut at
the moment the client sends a given statement (COMMIT, say)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace

from sqlalchemy.engine import make_url

from bot.config import Settings


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.cut_on: bytes | None = None  # a statement that cuts its connection before it passes
        self.cuts = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, "127.0.0.1", self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def take_down(self) -> None:
        """Refuse new connections and cut every open one: the database is gone."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def bring_back(self) -> None:
        await self.start()

    async def close(self) -> None:
        await self.take_down()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self._upstream)
        except OSError:
            client_w.transport.abort()
            return
        self._writers.update((client_w, server_w))
        upstream = self._pump(client_r, server_w, client_w, watch=True)
        downstream = self._pump(server_r, client_w, server_w, watch=False)
        for pump in (upstream, downstream):
            task = asyncio.create_task(pump)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        other: asyncio.StreamWriter,
        watch: bool,
    ) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while chunk := await reader.read(65536):
                if watch and self.cut_on is not None and self.cut_on in chunk:
                    self.cuts += 1
                    break
                writer.write(chunk)
                await writer.drain()
        for end in (writer, other):
            end.transport.abort()
            self._writers.discard(end)


@contextlib.asynccontextmanager
async def proxy_to(database_url: str) -> AsyncIterator[TcpProxy]:
    """A running proxy in front of the database of `database_url`."""
    url = make_url(database_url)
    running = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    await running.start()
    try:
        yield running
    finally:
        await running.close()


def through(settings: Settings, proxy: TcpProxy) -> Settings:
    """`settings` reaching the database only through `proxy`."""
    url = make_url(settings.database_url).set(host="127.0.0.1", port=proxy.port)
    return replace(settings, database_url=url.render_as_string(hide_password=False))
