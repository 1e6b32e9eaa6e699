"""POSTing a signed delivery to a merchant's endpoint with aiohttp, every limit bounded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp

CONNECT_TIMEOUT_S = 3.0
TOTAL_TIMEOUT_S = 10.0
RESPONSE_MAX_BYTES = 4096
USER_AGENT = "Paykit-Webhooks/1.0"


@dataclass(frozen=True)
class HttpOutcome:
    at: datetime
    status_code: int  # 0 when no response came back
    latency_ms: int
    error: str
    response: str


class WebhookSender:
    """One aiohttp session (connection pool) for every endpoint; built inside the running loop."""

    def __init__(
        self, connect_timeout_s: float = CONNECT_TIMEOUT_S, total_timeout_s: float = TOTAL_TIMEOUT_S
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=total_timeout_s, connect=connect_timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # limit=0: the dispatcher bounds concurrency itself (per endpoint and overall).
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, connector=aiohttp.TCPConnector(limit=0)
            )
        return self._session

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpOutcome:
        at = datetime.now(UTC)
        started = time.monotonic()
        sent = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
        try:
            # Redirects are not followed: the registered URL was checked, its redirect target was not.
            async with self._client().post(url, data=body, headers=sent, allow_redirects=False) as response:
                text = await _read_bounded(response)
                return HttpOutcome(at, response.status, _ms_since(started), "", text)
        except TimeoutError:
            return HttpOutcome(at, 0, _ms_since(started), "timeout: no answer in time", "")
        except aiohttp.ClientError as exc:
            return HttpOutcome(at, 0, _ms_since(started), f"{type(exc).__name__}: {exc}", "")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def _read_bounded(response: aiohttp.ClientResponse) -> str:
    """At most RESPONSE_MAX_BYTES of the body; the rest is never read (nor waited for)."""
    chunks: list[bytes] = []
    remaining = RESPONSE_MAX_BYTES
    try:
        while remaining > 0:
            chunk = await response.content.read(remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    except (aiohttp.ClientError, asyncio.IncompleteReadError):
        pass  # the status already decided the outcome; a broken body only shortens the record
    return b"".join(chunks).decode("utf-8", errors="replace")


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
