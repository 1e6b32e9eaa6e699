"""ChannelConnector for the sandbox channel, over HTTP with aiohttp."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout

from channel_gateway.adapters.connectors.simulator import transformers
from channel_gateway.domain.channel import (
    ChannelUnavailable,
    ChargeCommand,
    ChargeReply,
    ChargeState,
    NotificationRejected,
    QueryReply,
    RawExchange,
    VerifiedNotification,
)

CHANNEL_TIMEOUT_S = 5.0
RESPONSE_MAX_CHARS = 8_192


class SimulatorConnector:
    name = "simulator"

    def __init__(self, base_url: str, merchant_id: str, key: bytes) -> None:
        self._base_url = base_url.rstrip("/")
        self._merchant_id = merchant_id
        self._key = key
        self._session: ClientSession | None = None

    def _http(self) -> ClientSession:
        if self._session is None:
            self._session = ClientSession(timeout=ClientTimeout(total=CHANNEL_TIMEOUT_S))
        return self._session

    async def _call(
        self, operation: str, method: str, path: str, body: bytes
    ) -> tuple[dict[str, Any], RawExchange]:
        headers = transformers.auth_headers(
            self._merchant_id, self._key, method, path, body, int(time.time())
        )
        headers["Content-Type"] = "application/json"
        started = time.monotonic()
        try:
            async with self._http().request(
                method, self._base_url + path, data=body or None, headers=headers
            ) as resp:
                text = await resp.text()
                status = resp.status
                resp_headers = resp.headers
        except (ClientError, TimeoutError) as exc:
            raise ChannelUnavailable(f"{operation}: {type(exc).__name__}: {exc}") from exc
        latency_ms = int((time.monotonic() - started) * 1000)
        raw = RawExchange(operation, body.decode(), status, text[:RESPONSE_MAX_CHARS], latency_ms)
        try:
            # The channel signs its answers too; an unsigned answer is not the channel's.
            transformers.check_signature(self._key, method, path, resp_headers, text.encode(), time.time())
            return json.loads(text), raw
        except Exception as exc:
            raise ChannelUnavailable(f"{operation}: untrusted answer ({exc})") from exc

    async def charge(self, command: ChargeCommand) -> tuple[ChargeReply, RawExchange]:
        data, raw = await self._call("charge", "POST", "/v1/charges", transformers.charge_body(command))
        if raw.response_status >= 500:
            raise ChannelUnavailable(f"charge: HTTP {raw.response_status}")
        if data.get("result") == "INVALID":
            return ChargeReply(
                ChargeState.DECLINED,
                decline_code=str(data.get("code")),
                decline_message=str(data.get("message", "")),
            ), raw
        return transformers.charge_reply(data), raw

    async def query(self, payment_id: str) -> tuple[QueryReply, RawExchange]:
        data, raw = await self._call("query", "GET", f"/v1/charges/{payment_id}", b"")
        return transformers.query_reply(data), raw

    def verify_notification(self, path: str, headers: Mapping[str, str], body: bytes) -> VerifiedNotification:
        if headers.get("X-Sim-Merchant") != self._merchant_id:
            raise NotificationRejected("unknown merchant in X-Sim-Merchant")
        transformers.check_signature(self._key, "POST", path, headers, body, time.time())
        return transformers.notification(body)

    def acknowledgement(self, accepted: bool) -> tuple[int, str]:
        return (200, transformers.ACK_BODY) if accepted else (400, "fail")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
