"""ChannelConnector for the sandbox channel, over HTTP with aiohttp.

One instance per merchant account at the sandbox; the gateway names each
instance as a channel (SIMULATOR_CHANNELS), so payment-core can fail over
from one account to another.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any, TypeVar
from urllib.parse import quote

from aiohttp import ClientError, ClientSession, ClientTimeout
from paykit.money import AmountError, CurrencyError

from channel_gateway.adapters.connectors.simulator import transformers
from channel_gateway.domain.channel import (
    ChannelConflict,
    ChannelErrorKind,
    ChannelRefused,
    ChannelUnavailable,
    ChargeCommand,
    ChargeReply,
    CloseReply,
    NotificationRejected,
    PayoutCommand,
    PayoutReply,
    QueryReply,
    RawExchange,
    RefundCommand,
    RefundReply,
    StatementFile,
    VerifiedNotification,
)

CHANNEL_TIMEOUT_S = 5.0
RESPONSE_MAX_CHARS = 8_192
T = TypeVar("T")
# What a transformer raises on an answer it cannot read.
_UNREADABLE = (ValueError, KeyError, TypeError, AmountError, CurrencyError, NotificationRejected)


class SimulatorConnector:
    def __init__(self, base_url: str, merchant_id: str, key: bytes, name: str = "simulator") -> None:
        self.name = name
        self._base_url = base_url.rstrip("/")
        self._merchant_id = merchant_id
        self._key = key
        self._session: ClientSession | None = None

    def _http(self) -> ClientSession:
        if self._session is None:
            self._session = ClientSession(timeout=ClientTimeout(total=CHANNEL_TIMEOUT_S))
        return self._session

    async def _call(
        self, operation: str, method: str, path: str, body: bytes, read: Callable[[dict[str, Any]], T]
    ) -> tuple[T, RawExchange]:
        """One signed exchange; the answer is read by `read` only if it is the channel's and not 5xx."""
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
            latency_ms = int((time.monotonic() - started) * 1000)
            raw = RawExchange(operation, body.decode(), 0, "", latency_ms, error=type(exc).__name__)
            raise ChannelUnavailable(f"{operation}: {type(exc).__name__}: {exc}", raw) from exc
        latency_ms = int((time.monotonic() - started) * 1000)
        raw = RawExchange(operation, body.decode(), status, text[:RESPONSE_MAX_CHARS], latency_ms)
        if status >= 500:
            raise ChannelUnavailable(f"{operation}: HTTP {status}", raw)
        try:
            # The channel signs its answers too; an unsigned answer is not the channel's.
            transformers.check_signature(self._key, method, path, resp_headers, text.encode(), time.time())
            data = json.loads(text)
            if not isinstance(data, dict):
                raise TypeError("answer is not a JSON object")
            return read(data), raw
        except ChannelConflict as exc:
            raise ChannelConflict(f"{operation}: {exc}", raw) from exc
        except _UNREADABLE as exc:
            raise ChannelUnavailable(f"{operation}: untrusted or unreadable answer ({exc})", raw) from exc

    async def charge(self, command: ChargeCommand) -> tuple[ChargeReply, RawExchange]:
        body = transformers.charge_body(command)
        return await self._call("charge", "POST", "/v1/charges", body, transformers.charge_reply)

    async def query(self, payment_id: str) -> tuple[QueryReply, RawExchange]:
        path = f"/v1/charges/{quote(payment_id, safe='')}"
        return await self._call("query", "GET", path, b"", transformers.query_reply)

    async def refund(self, command: RefundCommand) -> tuple[RefundReply, RawExchange]:
        body = transformers.refund_body(command)
        return await self._call("refund", "POST", "/v1/refunds", body, transformers.refund_reply)

    async def query_refund(self, refund_id: str, payment_id: str) -> tuple[RefundReply, RawExchange]:
        def read(data: dict[str, Any]) -> RefundReply:
            # An answer about another payment's refund is not an answer to this question.
            if data.get("out_trade_no") not in (None, payment_id):
                raise ValueError(f"refund {refund_id} belongs to {data.get('out_trade_no')!r}")
            return transformers.refund_reply(data)

        path = f"/v1/refunds/{quote(refund_id, safe='')}"
        return await self._call("query_refund", "GET", path, b"", read)

    async def close(self, payment_id: str) -> tuple[CloseReply, RawExchange]:
        path = f"/v1/charges/{quote(payment_id, safe='')}/close"
        return await self._call("close", "POST", path, b"", transformers.close_reply)

    async def payout(self, command: PayoutCommand) -> tuple[PayoutReply, RawExchange]:
        def read(data: dict[str, Any]) -> PayoutReply:
            return transformers.payout_reply(data, command)

        body = transformers.payout_body(command)
        return await self._call("payout", "POST", "/v1/payouts", body, read)

    async def download_statement(self, day: date) -> tuple[StatementFile, RawExchange]:
        raw = RawExchange("download_statement", day.isoformat(), 0, "", 0, error="not offered by simpay")
        raise ChannelRefused(
            ChannelErrorKind.INVALID_REQUEST, "UNSUPPORTED", "simpay offers no statement download", raw
        )

    def verify_notification(self, path: str, headers: Mapping[str, str], body: bytes) -> VerifiedNotification:
        if headers.get("X-Sim-Merchant") != self._merchant_id:
            raise NotificationRejected("unknown merchant in X-Sim-Merchant")
        transformers.check_signature(self._key, "POST", path, headers, body, time.time())
        return transformers.notification(body)

    def acknowledgement(self, accepted: bool) -> tuple[int, str]:
        return (200, transformers.ACK_BODY) if accepted else (400, "fail")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
