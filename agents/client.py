"""An MCP client session that outlives the server it talks to.

A daemon runs for days; the server it talks to restarts now and then. `Session`
connects (streamable HTTP with the daemon's own bearer token, a stdio subprocess, or
an in-memory server inside the demo), and when a call fails because the connection
is gone it reconnects with exponential back-off. It never repeats a call that may
have reached the server: the caller gets `Disconnected` and decides again from fresh
state, so an actuation is never sent twice by the client.
"""

from __future__ import annotations

import logging
import random
import signal
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import anyio.abc
import httpx2
from mcp import Client, StdioServerParameters
from pydantic import BaseModel

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Target:
    """Where the server is: an HTTP URL (with a bearer token), a stdio command, or an
    in-memory server object (the demo's own process)."""

    url: str | None = None
    token: str | None = None
    stdio: StdioServerParameters | None = None
    server: Any = None

    def describe(self) -> str:
        if self.url:
            return self.url
        if self.stdio:
            return f"stdio: {self.stdio.command} {' '.join(self.stdio.args)}"
        return "in-memory server"


class ToolResult(BaseModel):
    """One tool call's answer: structured data on success, the server's text on error."""

    name: str
    ok: bool
    data: dict[str, Any] | None = None
    text: str = ""

    @property
    def refused_rule(self) -> str | None:
        """The guardrail rule that refused the call, if that is what happened."""
        marker = "Refused by rule '"
        if self.ok or marker not in self.text:
            return None
        return self.text.split(marker, 1)[1].split("'", 1)[0]


class Disconnected(Exception):
    """The connection broke during a call; the call may or may not have reached the server."""


@dataclass
class Backoff:
    """Exponential back-off with jitter, in wall seconds."""

    first_s: float = 0.25
    max_s: float = 10.0
    factor: float = 2.0

    def delays(self):
        delay = self.first_s
        while True:
            yield delay * (0.8 + 0.4 * random.random())
            delay = min(self.max_s, delay * self.factor)


def _text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


class Session:
    """`async with Session(target) as s: await s.call("grid_state")`."""

    def __init__(
        self,
        target: Target,
        *,
        backoff: Backoff | None = None,
        client_options: dict[str, Any] | None = None,
    ) -> None:
        self.target = target
        self.backoff = backoff or Backoff()
        self._options = client_options or {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._client: Client | None = None
        self._done: anyio.Event | None = None
        self._finished: anyio.Event | None = None
        self.connects = 0  # how many times a connection was made (1 + reconnects)

    async def __aenter__(self) -> Session:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            await self.connect()
        except BaseException:
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self._close()
        assert self._tg is not None
        self._tg.cancel_scope.cancel()
        await self._tg.__aexit__(None, None, None)

    async def _open(self) -> None:
        """Connect in a task of the session's own: the SDK client's task group cancels
        the task that entered it when the transport dies, and that must not be the
        daemon's task."""
        assert self._tg is not None
        ready, done, finished = anyio.Event(), anyio.Event(), anyio.Event()
        box: dict[str, Any] = {}

        async def keep() -> None:
            try:
                async with AsyncExitStack() as stack:
                    box["client"] = await stack.enter_async_context(
                        Client(await self._server(stack), **self._options)
                    )
                    ready.set()
                    await done.wait()
            except Exception as exc:  # a dead transport: reported to whoever calls next
                box["error"] = exc
            finally:
                ready.set()
                finished.set()

        self._tg.start_soon(keep)
        await ready.wait()
        if "client" not in box:
            raise box.get("error") or ConnectionError("the session closed while connecting")
        self._client, self._done, self._finished = box["client"], done, finished
        self.connects += 1

    async def _server(self, stack: AsyncExitStack) -> Any:
        t = self.target
        if t.url is None:
            return t.stdio if t.stdio is not None else t.server
        from mcp.client.streamable_http import streamable_http_client

        headers = {"Authorization": f"Bearer {t.token}"} if t.token else {}
        http = await stack.enter_async_context(httpx2.AsyncClient(headers=headers, timeout=60))
        return streamable_http_client(t.url, http_client=http)

    async def _close(self) -> None:
        done, finished = self._done, self._finished
        self._client = self._done = self._finished = None
        if done is not None and finished is not None:
            done.set()
            with anyio.move_on_after(5):
                await finished.wait()

    async def connect(self) -> None:
        """Connect, retrying with back-off until it works (or the caller is cancelled)."""
        for delay in self.backoff.delays():
            try:
                await self._open()
                if self.connects > 1:
                    log.warning("reconnected to %s", self.target.describe())
                return
            except Exception as exc:
                log.warning(
                    "cannot reach %s (%s); retrying in %.1f s",
                    self.target.describe(),
                    _leaf(exc),
                    delay,
                )
                await anyio.sleep(delay)

    async def _use(self, work: Callable[[Client], Awaitable[T]]) -> T:
        if self._client is None:
            await self.connect()
        assert self._client is not None
        try:
            return await work(self._client)
        except Exception as exc:
            log.warning("connection to %s lost: %s", self.target.describe(), _leaf(exc))
            await self._close()
            raise Disconnected(str(_leaf(exc))) from exc

    async def call(self, name: str, arguments: dict[str, Any] | None = None) -> ToolResult:
        """Call a tool. A refusal or bad input comes back as `ok=False` with the server's
        text; a broken connection raises `Disconnected` (and the next call reconnects)."""
        result = await self._use(lambda c: c.call_tool(name, arguments or {}))
        if result.is_error:
            return ToolResult(name=name, ok=False, text=_text(result))
        return ToolResult(name=name, ok=True, data=result.structured_content, text=_text(result))

    async def list_tools(self) -> list[Any]:
        return (await self._use(lambda c: c.list_tools())).tools


def _leaf(exc: BaseException) -> BaseException:
    """The SDK wraps transport failures in exception groups; the innermost one says why."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


async def until_signalled(main: Callable[[], Awaitable[None]]) -> bool:
    """Run `main` until it returns or SIGINT/SIGTERM arrives; True if a signal stopped it.
    Cancellation unwinds `main`'s own clean-up (leases released, sessions closed)."""
    stopped = False
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            nonlocal stopped
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    log.warning("%s: stopping", signal.Signals(signum).name)
                    stopped = True
                    tg.cancel_scope.cancel()
                    return

        tg.start_soon(watch)
        await main()
        tg.cancel_scope.cancel()
    return stopped
