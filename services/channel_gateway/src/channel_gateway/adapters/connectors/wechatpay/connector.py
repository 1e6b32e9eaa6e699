"""ChannelConnector for WeChat Pay API v3 (Native pay), over HTTP with aiohttp.

One instance per merchant account (mchid + appid). Every request is signed (signing.py);
every 2xx answer must carry a valid platform signature, and so must any refusal that settles
something (declined, closed, already paid, not found, number taken): an unsigned or badly
signed answer of that kind is no answer (ChannelUnavailable, the outcome unknown). A plain
refusal that only says "nothing was done" (invalid request, authentication, rate limit) is
taken unsigned too, because WeChat Pay signs only answers to requests whose signature it
could check: a SIGN_ERROR 401 is never signed.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, NoReturn, TypeVar
from urllib.parse import quote, urlsplit

from aiohttp import ClientError, ClientResponse, ClientSession, ClientTimeout
from paykit.money import AmountError, CurrencyError
from yarl import URL

from channel_gateway.adapters.connectors.wechatpay import errors, signing, transformers
from channel_gateway.adapters.connectors.wechatpay.config import WechatPayConfig
from channel_gateway.domain.channel import (
    AcknowledgedOnly,
    ChannelConflict,
    ChannelErrorKind,
    ChannelRefused,
    ChannelUnavailable,
    ChargeCommand,
    ChargeReply,
    ChargeState,
    CloseReply,
    CloseResult,
    NotificationRejected,
    PayoutCommand,
    PayoutReply,
    QueryReply,
    RawExchange,
    RefundCommand,
    RefundReply,
    RefundState,
    StatementFile,
    VerifiedNotification,
)

CHANNEL_TIMEOUT_S: Final = 10.0
ANSWER_MAX_BYTES: Final = 1024 * 1024
# A day's trade bill of a busy merchant; larger is refused rather than held in memory.
STATEMENT_MAX_BYTES: Final = 64 * 1024 * 1024
RESPONSE_MAX_CHARS: Final = 8_192
_READ_CHUNK_BYTES: Final = 64 * 1024
STATEMENT_FORMAT: Final = "wechatpay-trade-bill"
# API v3 requests must carry a User-Agent (WeChat Pay refuses requests without one).
USER_AGENT: Final = "paykit-channel-gateway/0.1 (WeChat Pay API v3)"
NATIVE_PATH: Final = "/v3/pay/transactions/native"
REFUND_PATH: Final = "/v3/refund/domestic/refunds"
# Codes we give requests we refuse to send (malformed for WeChat Pay) and operations it lacks.
NOT_SENT: Final = "NOT_SENT"
UNSUPPORTED: Final = "UNSUPPORTED"
# A rejected callback gets this answer; WeChat Pay sends it again. API v3 callback rules
# ("通知应答", https://pay.weixin.qq.com/wiki/doc/apiv3/apis/chapter3_3_5.shtml): taken is
# 200 or 204 with no body needed; refused is 4xx/5xx with {"code": "FAIL", "message": ...}.
ACK_FAIL_STATUS: Final = 400
ACK_FAIL_BODY: Final = json.dumps({"code": "FAIL", "message": "notification rejected"})
T = TypeVar("T")
_UNREADABLE = (ValueError, KeyError, TypeError, AmountError, CurrencyError)


@dataclass(frozen=True)
class _Answer:
    status: int
    content: bytes
    raw: RawExchange
    # True when the platform signature was present and verified.
    signed: bool


@dataclass(frozen=True)
class _Target:
    url: URL
    # What the signature's URL line holds: the path with its query, exactly as sent.
    signed_url: str


class WechatPayConnector:
    def __init__(
        self, config: WechatPayConfig, name: str = "wechatpay", clock: Callable[[], float] = time.time
    ) -> None:
        self.name = name
        self._config = config
        self._clock = clock
        base = urlsplit(config.api_base_url)
        self._origin = (base.scheme, base.netloc)
        self._prefix = base.path.rstrip("/")
        self._session: ClientSession | None = None

    def _http(self) -> ClientSession:
        if self._session is None:
            self._session = ClientSession(timeout=ClientTimeout(total=CHANNEL_TIMEOUT_S))
        return self._session

    def _target(self, path: str) -> _Target:
        signed_url = self._prefix + path
        scheme, netloc = self._origin
        return _Target(URL(f"{scheme}://{netloc}{signed_url}", encoded=True), signed_url)

    # -- one exchange -------------------------------------------------------------------
    async def _send(
        self,
        operation: str,
        method: str,
        target: _Target,
        body: bytes = b"",
        *,
        limit_bytes: int = ANSWER_MAX_BYTES,
        signed_success: bool = True,
    ) -> _Answer:
        """One signed request. Raises ChannelUnavailable when unanswered, 5xx, too large, or
        signed wrongly; `signed_success=False` only for the bill file, which WeChat Pay does
        not sign (its hash comes signed in the tradebill answer)."""
        config = self._config
        headers = {
            "Authorization": signing.authorization(
                config.mchid,
                config.merchant_serial_no,
                config.merchant_private_key,
                method,
                target.signed_url,
                body,
                int(self._clock()),
                signing.new_nonce(),
            ),
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if body:
            headers["Content-Type"] = "application/json"
        request_text = body.decode() if body else f"{method} {target.signed_url}"
        started = time.monotonic()
        try:
            async with self._http().request(method, target.url, data=body or None, headers=headers) as resp:
                content = await _read_limited(resp, limit_bytes)
                status, answer_headers = resp.status, resp.headers
        except (ClientError, TimeoutError, _TooLarge) as exc:
            latency_ms = int((time.monotonic() - started) * 1000)
            raw = RawExchange(operation, request_text, 0, "", latency_ms, error=type(exc).__name__)
            raise ChannelUnavailable(f"{operation}: {type(exc).__name__}: {exc}", raw) from exc
        latency_ms = int((time.monotonic() - started) * 1000)
        shown = content.decode("utf-8", "replace")[:RESPONSE_MAX_CHARS]
        raw = RawExchange(operation, request_text, status, shown, latency_ms)
        if status >= 500:
            raise ChannelUnavailable(f"{operation}: HTTP {status}", raw)
        success = 200 <= status < 300
        must_verify = (success and signed_success) or (not success and signing.has_signature(answer_headers))
        if must_verify:
            try:
                signing.verify(answer_headers, content, config.platform, self._clock())
            except NotificationRejected as exc:
                raise ChannelUnavailable(f"{operation}: untrusted answer ({exc.reason})", raw) from exc
        return _Answer(status, content, raw, signed=must_verify)

    @staticmethod
    def _read(operation: str, answer: _Answer, read: Callable[[dict[str, Any]], T]) -> T:
        if answer.status != 200:
            raise ChannelUnavailable(f"{operation}: unexpected HTTP {answer.status}", answer.raw)
        try:
            data = json.loads(answer.content)
            if not isinstance(data, dict):
                raise TypeError("answer is not a JSON object")
            return read(data)
        except ChannelConflict as exc:
            raise ChannelConflict(f"{operation}: {exc}", answer.raw) from exc
        except _UNREADABLE as exc:
            raise ChannelUnavailable(f"{operation}: unreadable answer ({exc})", answer.raw) from exc

    @staticmethod
    def _error(operation: str, answer: _Answer) -> errors.WechatError:
        if 200 <= answer.status < 300:
            raise ChannelUnavailable(f"{operation}: unexpected HTTP {answer.status}", answer.raw)
        try:
            return errors.parse(answer.status, answer.content)
        except ValueError as exc:
            raise ChannelUnavailable(
                f"{operation}: HTTP {answer.status}, unreadable ({exc})", answer.raw
            ) from exc

    @staticmethod
    def _settled(operation: str, error: errors.WechatError, answer: _Answer) -> None:
        """Only a signed answer may settle a trade's or refund's state."""
        if not answer.signed:
            raise ChannelUnavailable(
                f"{operation}: unsigned {error.code} answer cannot be trusted to settle anything", answer.raw
            )

    @staticmethod
    def _refuse(operation: str, error: errors.WechatError, answer: _Answer) -> NoReturn:
        """A refusal the operation has no reading of its own for."""
        kind = errors.kind_of(error)
        if kind in (ChannelErrorKind.UNKNOWN_OUTCOME, ChannelErrorKind.DECLINED):
            # DECLINED means something only to a charge or a refund: elsewhere it proves nothing.
            raise ChannelUnavailable(
                f"{operation}: HTTP {error.status} {error.code}: {error.message}", answer.raw
            )
        raise ChannelRefused(kind, error.code, error.message, answer.raw)

    @staticmethod
    def _not_sent(operation: str, exc: Exception) -> ChannelRefused:
        raw = RawExchange(operation, "", 0, "", 0, error=f"not sent: {exc}")
        return ChannelRefused(ChannelErrorKind.INVALID_REQUEST, NOT_SENT, str(exc), raw)

    # -- charge, query, close -----------------------------------------------------------
    async def charge(self, command: ChargeCommand) -> tuple[ChargeReply, RawExchange]:
        try:
            body = transformers.charge_body(command, self._config.appid, self._config.mchid)
        except ValueError as exc:
            raise self._not_sent("charge", exc) from exc
        answer = await self._send("charge", "POST", self._target(NATIVE_PATH), body)
        if 200 <= answer.status < 300:
            return self._read("charge", answer, transformers.charge_reply), answer.raw
        error = self._error("charge", answer)
        if error.code in errors.NUMBER_TAKEN:
            self._settled("charge", error, answer)
            held = f"charge: WeChat Pay holds another trade numbered {command.payment_id}"
            raise ChannelConflict(f"{held}: {error.code} {error.message}", answer.raw)
        state = _charge_state_of(error)
        if state is None:
            self._refuse("charge", error, answer)
        self._settled("charge", error, answer)
        return ChargeReply(state, decline_code=error.code, decline_message=error.message), answer.raw

    async def query(self, payment_id: str) -> tuple[QueryReply, RawExchange]:
        try:
            number = transformers.check_out_trade_no(payment_id)
        except ValueError as exc:
            raise self._not_sent("query", exc) from exc
        path = f"/v3/pay/transactions/out-trade-no/{quote(number, safe='')}?mchid={quote(self._config.mchid)}"
        answer = await self._send("query", "GET", self._target(path))

        def read(data: dict[str, Any]) -> QueryReply:
            return transformers.query_reply(data, payment_id, self._config.mchid)

        if 200 <= answer.status < 300:
            return self._read("query", answer, read), answer.raw
        error = self._error("query", answer)
        if error.code in errors.NOT_FOUND:
            self._settled("query", error, answer)
            return QueryReply(ChargeState.NOT_FOUND), answer.raw
        self._refuse("query", error, answer)

    async def close(self, payment_id: str) -> tuple[CloseReply, RawExchange]:
        try:
            number = transformers.check_out_trade_no(payment_id)
        except ValueError as exc:
            raise self._not_sent("close", exc) from exc
        path = f"/v3/pay/transactions/out-trade-no/{quote(number, safe='')}/close"
        answer = await self._send(
            "close", "POST", self._target(path), transformers.close_body(self._config.mchid)
        )
        if answer.status in (200, 204):  # 204 No Content is WeChat Pay's "closed"
            return CloseReply(CloseResult.CLOSED), answer.raw
        error = self._error("close", answer)
        if error.code in errors.ALREADY_PAID:
            self._settled("close", error, answer)
            return CloseReply(CloseResult.ALREADY_PAID, error.message or "the payer already paid"), answer.raw
        if error.code in errors.NOT_FOUND | errors.CLOSED:
            # Never received, or closed before: nothing can be paid under this number now.
            self._settled("close", error, answer)
            return CloseReply(CloseResult.CLOSED, f"{error.code}: {error.message}"), answer.raw
        self._refuse("close", error, answer)

    # -- refunds ------------------------------------------------------------------------
    async def refund(self, command: RefundCommand) -> tuple[RefundReply, RawExchange]:
        try:
            body = transformers.refund_body(command)
        except ValueError as exc:
            raise self._not_sent("refund", exc) from exc
        answer = await self._send("refund", "POST", self._target(REFUND_PATH), body)

        def read(data: dict[str, Any]) -> RefundReply:
            return transformers.refund_reply(data, command.refund_id, command.payment_id, command.amount)

        if 200 <= answer.status < 300:
            return self._read("refund", answer, read), answer.raw
        error = self._error("refund", answer)
        if error.code in errors.NUMBER_TAKEN:
            self._settled("refund", error, answer)
            held = f"refund: WeChat Pay holds another refund numbered {command.refund_id}"
            raise ChannelConflict(f"{held}: {error.code} {error.message}", answer.raw)
        if error.code in errors.NOT_FOUND or errors.kind_of(error) is ChannelErrorKind.DECLINED:
            # Refused on its merits (balance, period, no such trade): no money moved.
            self._settled("refund", error, answer)
            failed = RefundReply(RefundState.FAILED, failure_code=error.code, failure_message=error.message)
            return failed, answer.raw
        self._refuse("refund", error, answer)

    async def query_refund(self, refund_id: str, payment_id: str) -> tuple[RefundReply, RawExchange]:
        try:
            number = transformers.check_out_refund_no(refund_id)
        except ValueError as exc:
            raise self._not_sent("query_refund", exc) from exc
        answer = await self._send(
            "query_refund", "GET", self._target(f"{REFUND_PATH}/{quote(number, safe='')}")
        )

        def read(data: dict[str, Any]) -> RefundReply:
            return transformers.refund_reply(data, refund_id, payment_id)

        if 200 <= answer.status < 300:
            return self._read("query_refund", answer, read), answer.raw
        error = self._error("query_refund", answer)
        if error.code in errors.NOT_FOUND:
            self._settled("query_refund", error, answer)
            return RefundReply(RefundState.NOT_FOUND), answer.raw
        self._refuse("query_refund", error, answer)

    async def payout(self, command: PayoutCommand) -> tuple[PayoutReply, RawExchange]:
        raw = RawExchange("payout", command.settlement_id, 0, "", 0, error="not offered by this connector")
        raise ChannelRefused(
            ChannelErrorKind.INVALID_REQUEST,
            UNSUPPORTED,
            "WeChat Pay Native pay has no payout of a settlement to the merchant's bank account",
            raw,
        )

    # -- statements ---------------------------------------------------------------------
    def _download_target(self, download_url: str) -> _Target | None:
        """The bill's download target, only on WeChat Pay's own origin: a signed request (and
        our trust in the bytes) goes nowhere else."""
        parts = urlsplit(download_url)
        if (parts.scheme, parts.netloc) != self._origin or not parts.path.startswith("/"):
            return None
        signed_url = parts.path + (f"?{parts.query}" if parts.query else "")
        return _Target(URL(download_url, encoded=True), signed_url)

    async def download_statement(self, day: date) -> tuple[StatementFile, RawExchange]:
        """GET /v3/bill/tradebill (signed answer: hash_type, hash_value, download_url), then GET
        the download_url (signed request, unsigned answer: the file, checked against the hash)."""
        operation = "download_statement"
        path = f"/v3/bill/tradebill?bill_date={day.isoformat()}&bill_type=ALL"
        answer = await self._send(operation, "GET", self._target(path))
        if not 200 <= answer.status < 300:
            self._refuse(operation, self._error(operation, answer), answer)
        link = self._read(operation, answer, transformers.bill_link)
        if link.hash_type != "SHA1":
            raise ChannelUnavailable(
                f"{operation}: cannot check a bill hashed with {link.hash_type[:20]!r}", answer.raw
            )
        target = self._download_target(link.download_url)
        if target is None:
            raise ChannelUnavailable(f"{operation}: download_url is not on {self._origin[1]}", answer.raw)
        file = await self._send(
            operation, "GET", target, limit_bytes=STATEMENT_MAX_BYTES, signed_success=False
        )
        if not 200 <= file.status < 300:
            self._refuse(operation, self._error(operation, file), file)
        digest = hashlib.sha1(file.content, usedforsecurity=False).hexdigest()
        raw = RawExchange(
            operation,
            f"GET {path}\nGET {target.signed_url}",
            file.status,
            f"{answer.raw.response_body}\n<{len(file.content)} bytes, sha1 {digest}>",
            answer.raw.latency_ms + file.raw.latency_ms,
        )
        if digest != link.hash_value:
            raise ChannelUnavailable(
                f"{operation}: the bill's SHA1 {digest} is not hash_value {link.hash_value}", raw
            )
        filename = f"wechatpay-tradebill-{day.isoformat()}.csv"
        return StatementFile(day, STATEMENT_FORMAT, file.content, filename), raw

    # -- notifications ------------------------------------------------------------------
    def verify_notification(
        self, path: str, headers: Mapping[str, str], body: bytes
    ) -> VerifiedNotification | AcknowledgedOnly:
        """Signature (serial, freshness) first; only then decrypt and read. `path` is not part
        of WeChat Pay's callback signature."""
        signing.verify(headers, body, self._config.platform, self._clock())
        envelope = transformers.envelope(body)
        if envelope.algorithm != signing.AEAD_ALGORITHM:
            raise NotificationRejected(
                f"cannot decrypt resource: unknown algorithm {envelope.algorithm[:40]!r}"
            )
        plaintext = signing.decrypt(
            self._config.apiv3_key, envelope.nonce, envelope.ciphertext, envelope.associated_data
        )
        return transformers.notification(envelope, plaintext, self._config.mchid, self._config.appid)

    def acknowledgement(self, accepted: bool) -> tuple[int, str]:
        return (200, "") if accepted else (ACK_FAIL_STATUS, ACK_FAIL_BODY)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _charge_state_of(error: errors.WechatError) -> ChargeState | None:
    """What a charge refusal says of the trade, if anything."""
    if error.code in errors.CLOSED:
        return ChargeState.CLOSED
    if error.code in errors.ALREADY_PAID:
        # Paid already under this number (an earlier attempt's answer was lost): a query reads
        # the paid trade, with its transaction id and amount.
        return ChargeState.PENDING
    if errors.kind_of(error) is ChannelErrorKind.DECLINED:
        return ChargeState.DECLINED
    return None


class _TooLarge(Exception):
    pass


async def _read_limited(resp: ClientResponse, limit_bytes: int) -> bytes:
    if resp.content_length is not None and resp.content_length > limit_bytes:
        raise _TooLarge(f"answer of {resp.content_length} bytes exceeds {limit_bytes}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(_READ_CHUNK_BYTES):
        size += len(chunk)
        if size > limit_bytes:
            raise _TooLarge(f"answer exceeds {limit_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
