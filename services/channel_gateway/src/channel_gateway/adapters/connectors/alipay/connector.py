"""ChannelConnector for Alipay's OpenAPI gateway (gateway.do), over HTTP with aiohttp."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any, Final, TypeVar
from urllib.parse import urlencode

from aiohttp import ClientError, ClientResponse, ClientSession, ClientTimeout
from cryptography.hazmat.primitives.asymmetric import rsa
from paykit.money import AmountError, CurrencyError

from channel_gateway.adapters.connectors.alipay import signing, transformers
from channel_gateway.adapters.connectors.alipay.errors import AlipayError
from channel_gateway.domain.channel import (
    AcknowledgedOnly,
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

# The SDKs' default read timeout is 15 s; a charge waits on us, so we give up sooner.
CHANNEL_TIMEOUT_S: Final = 10.0
# A bill of a busy day is large; the limit only stops a runaway download.
STATEMENT_TIMEOUT_S: Final = 120.0
RESPONSE_MAX_BYTES: Final = 256 * 1024
STATEMENT_MAX_BYTES: Final = 64 * 1024 * 1024
RAW_MAX_CHARS: Final = 8_192
READ_CHUNK_BYTES: Final = 64 * 1024
ACK_ACCEPTED: Final = "success"
ACK_REJECTED: Final = "failure"
STATEMENT_FORMAT: Final = "alipay-trade-bill"
# Parameters every call carries [common request parameters of each method's page].
FORMAT: Final = "JSON"
SIGN_TYPE: Final = "RSA2"
VERSION: Final = "1.0"
# A request signs every parameter but sign; a notification excludes sign_type too.
_REQUEST_UNSIGNED: Final = frozenset({"sign"})
_NOTIFICATION_UNSIGNED: Final = frozenset({"sign", "sign_type"})
# What a transformer raises on an answer it cannot read.
_UNREADABLE: Final = (ValueError, KeyError, TypeError, AmountError, CurrencyError)
T = TypeVar("T")


def _refusal(operation: str, error: AlipayError, raw: RawExchange) -> Exception:
    """The domain exception for an Alipay error that is not a reply state of `operation`."""
    if error.is_conflict:
        return ChannelConflict(
            f"{operation}: Alipay holds another request under our number: {error.message}", raw
        )
    kind = error.kind
    if kind in (ChannelErrorKind.UNKNOWN_OUTCOME, ChannelErrorKind.DECLINED):
        # DECLINED here is a business code this operation does not expect: unread, so unknown.
        return ChannelUnavailable(
            f"{operation}: outcome unknown ({error.channel_code}): {error.message}", raw
        )
    return ChannelRefused(kind, error.channel_code, f"{operation}: {error.message}", raw)


async def _read_limited(resp: ClientResponse, limit_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(READ_CHUNK_BYTES):
        size += len(chunk)
        if size > limit_bytes:
            raise ValueError(f"answer is larger than {limit_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class AlipayConnector:
    def __init__(
        self,
        gateway_url: str,
        app_id: str,
        app_private_key: rsa.RSAPrivateKey,
        alipay_public_key: rsa.RSAPublicKey,
        *,
        seller_id: str = "",
        name: str = "alipay",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.name = name
        self._gateway_url = gateway_url
        self._app_id = app_id
        self._private_key = app_private_key
        self._public_key = alipay_public_key
        self._seller_id = seller_id
        self._clock = clock
        self._session: ClientSession | None = None

    def _http(self) -> ClientSession:
        if self._session is None:
            self._session = ClientSession(timeout=ClientTimeout(total=CHANNEL_TIMEOUT_S))
        return self._session

    # -- one signed call ---------------------------------------------------------------
    def signed_params(self, call: transformers.Call) -> dict[str, str]:
        """Every parameter of `call`, signed (public for the interoperability tests)."""
        params = {
            "app_id": self._app_id,
            "method": call.method,
            "format": FORMAT,
            "charset": signing.CHARSET,
            "sign_type": SIGN_TYPE,
            "timestamp": transformers.timestamp_text(self._clock()),
            "version": VERSION,
            "notify_url": call.notify_url,
            "biz_content": call.biz_content(),
        }
        params = {k: v for k, v in params.items() if v != ""}
        params["sign"] = signing.sign(self._private_key, signing.sign_content(params, _REQUEST_UNSIGNED))
        return params

    def _url(self, params: Mapping[str, str]) -> str:
        # As the SDKs do: common parameters in the query string, biz_content in the form body.
        query = urlencode({k: v for k, v in params.items() if k != "biz_content"})
        separator = "&" if "?" in self._gateway_url else "?"
        return f"{self._gateway_url}{separator}{query}"

    async def _post(self, operation: str, params: dict[str, str]) -> tuple[str, RawExchange]:
        """POST the call; the answer's text, only if it came back 200 and is utf-8."""
        request_text = urlencode(params)
        body = urlencode({"biz_content": params["biz_content"]}).encode()
        headers = {"Content-Type": f"application/x-www-form-urlencoded;charset={signing.CHARSET}"}
        started = time.monotonic()
        try:
            async with self._http().post(self._url(params), data=body, headers=headers) as resp:
                status = resp.status
                content = await _read_limited(resp, RESPONSE_MAX_BYTES)
        except (ClientError, TimeoutError, ValueError) as exc:
            latency_ms = int((time.monotonic() - started) * 1000)
            raw = RawExchange(operation, request_text, 0, "", latency_ms, error=type(exc).__name__)
            raise ChannelUnavailable(f"{operation}: {type(exc).__name__}: {exc}", raw) from exc
        latency_ms = int((time.monotonic() - started) * 1000)
        text = content.decode(signing.CHARSET, errors="replace")
        raw = RawExchange(operation, request_text, status, text[:RAW_MAX_CHARS], latency_ms)
        if status != 200:
            # Alipay answers every call with 200; anything else is a proxy or an outage.
            raise ChannelUnavailable(f"{operation}: HTTP {status}", raw)
        try:
            return content.decode(signing.CHARSET), raw
        except UnicodeDecodeError as exc:
            raise ChannelUnavailable(f"{operation}: answer is not {signing.CHARSET}", raw) from exc

    async def _call(
        self, operation: str, call: transformers.Call, read: Callable[[Mapping[str, Any]], T]
    ) -> tuple[T, RawExchange]:
        """One signed exchange; the answer is read only once its signature verifies."""
        text, raw = await self._post(operation, self.signed_params(call))
        try:
            answer = signing.split_answer(call.method, text)
            signing.verify_answer(self._public_key, answer)
        except _UNREADABLE as exc:
            # Unsigned, signed by another key or tampered: not Alipay's word, even when it
            # looks like a refusal (an unsigned error_response proves nothing was done).
            raise ChannelUnavailable(f"{operation}: untrusted answer ({exc})", raw) from exc
        try:
            return read(answer.node), raw
        except transformers.Refusal as exc:
            raise _refusal(operation, exc.error, raw) from exc
        except _UNREADABLE as exc:
            raise ChannelUnavailable(f"{operation}: unreadable answer ({exc})", raw) from exc

    @staticmethod
    def _refuse_before_sending(operation: str, request: str, exc: Exception) -> ChannelRefused:
        """An amount Alipay cannot take is refused here, unsent (so nothing happened)."""
        code = "UNSUPPORTED_CURRENCY" if isinstance(exc, CurrencyError) else "AMOUNT_OUT_OF_RANGE"
        raw = RawExchange(operation, request, 0, "", 0, error=f"not sent: {exc}")
        return ChannelRefused(ChannelErrorKind.INVALID_REQUEST, code, f"{operation}: {exc}", raw)

    # -- operations --------------------------------------------------------------------
    async def charge(self, command: ChargeCommand) -> tuple[ChargeReply, RawExchange]:
        try:
            call = transformers.charge_call(command, self._seller_id)
        except (AmountError, CurrencyError) as exc:
            raise self._refuse_before_sending("charge", command.payment_id, exc) from exc

        def read(node: Mapping[str, Any]) -> ChargeReply:
            return transformers.charge_reply(node, command)

        return await self._call("charge", call, read)

    async def query(self, payment_id: str) -> tuple[QueryReply, RawExchange]:
        def read(node: Mapping[str, Any]) -> QueryReply:
            return transformers.query_reply(node, payment_id)

        return await self._call("query", transformers.query_call(payment_id), read)

    async def refund(self, command: RefundCommand) -> tuple[RefundReply, RawExchange]:
        try:
            call = transformers.refund_call(command)
        except (AmountError, CurrencyError) as exc:
            raise self._refuse_before_sending("refund", command.refund_id, exc) from exc

        def read(node: Mapping[str, Any]) -> RefundReply:
            return transformers.refund_reply(node, command)

        return await self._call("refund", call, read)

    async def query_refund(self, refund_id: str, payment_id: str) -> tuple[RefundReply, RawExchange]:
        def read(node: Mapping[str, Any]) -> RefundReply:
            return transformers.refund_query_reply(node, refund_id, payment_id)

        return await self._call("query_refund", transformers.refund_query_call(refund_id, payment_id), read)

    async def close(self, payment_id: str) -> tuple[CloseReply, RawExchange]:
        def read(node: Mapping[str, Any]) -> CloseReply:
            return transformers.close_reply(node, payment_id)

        return await self._call("close", transformers.close_call(payment_id), read)

    async def payout(self, command: PayoutCommand) -> tuple[PayoutReply, RawExchange]:
        raw = RawExchange("payout", command.settlement_id, 0, "", 0, error="not offered by this connector")
        raise ChannelRefused(
            ChannelErrorKind.INVALID_REQUEST,
            "UNSUPPORTED",
            "payouts to a bank account (alipay.fund.trans.uni.transfer) are not implemented for Alipay",
            raw,
        )

    async def download_statement(self, day: date) -> tuple[StatementFile, RawExchange]:
        """Ask for the day's trade bill URL (valid 30 s), then GET the file as Alipay made it."""
        url, raw = await self._call(
            "download_statement", transformers.bill_call(day), transformers.bill_download_url
        )
        started = time.monotonic()
        try:
            async with self._http().get(url, timeout=ClientTimeout(total=STATEMENT_TIMEOUT_S)) as resp:
                status = resp.status
                disposition = resp.content_disposition
                content = await _read_limited(resp, STATEMENT_MAX_BYTES) if status == 200 else b""
        except (ClientError, TimeoutError, ValueError) as exc:
            failed = dataclasses.replace(raw, error=f"bill download: {type(exc).__name__}")
            raise ChannelUnavailable(f"download_statement: bill download failed: {exc}", failed) from exc
        latency_ms = raw.latency_ms + int((time.monotonic() - started) * 1000)
        if status != 200:
            failed = dataclasses.replace(raw, latency_ms=latency_ms, error=f"bill download: HTTP {status}")
            raise ChannelUnavailable(f"download_statement: bill download answered HTTP {status}", failed)
        filename = (disposition.filename if disposition is not None else None) or ""
        # The exchange kept is the signed URL query; the file itself is the statement.
        return StatementFile(day, STATEMENT_FORMAT, content, filename), dataclasses.replace(
            raw, latency_ms=latency_ms
        )

    # -- notifications -----------------------------------------------------------------
    def verify_notification(
        self, path: str, headers: Mapping[str, str], body: bytes
    ) -> VerifiedNotification | AcknowledgedOnly:
        params = transformers.notification_params(body)
        if params.get("sign_type") != SIGN_TYPE:
            raise NotificationRejected(f"sign_type {params.get('sign_type', '')!r} is not {SIGN_TYPE}")
        content = signing.sign_content(params, _NOTIFICATION_UNSIGNED)
        try:
            signing.verify(self._public_key, content.encode(signing.CHARSET), params.get("sign", ""))
        except signing.SignatureError as exc:
            raise NotificationRejected(f"signature: {exc}") from None
        expected = transformers.Expected(self._app_id, self._seller_id, self._clock())
        return transformers.notification(params, expected)

    def acknowledgement(self, accepted: bool) -> tuple[int, str]:
        # Alipay reads only the body: exactly "success" stops its retries, anything else
        # (we say "failure") makes it send again. The 400 is for our own HTTP metrics.
        return (200, ACK_ACCEPTED) if accepted else (400, ACK_REJECTED)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
