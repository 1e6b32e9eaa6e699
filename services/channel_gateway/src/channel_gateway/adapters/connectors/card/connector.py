"""ChannelConnector for the card acquirer, over HTTP with aiohttp.

Finding the PaymentIntent of a payment. The acquirer names an intent by its own
id ("pi_..."); the gateway asks about payments by our payment id only (the
ChannelConnector interface passes no channel_trade_no to query, close, refund or
query_refund, although the gateway stores it from the ChargeReply). So:

1. every intent this process created or found is remembered (payment id -> intent
   id, bounded, least recently used forgotten) and retrieved by id: strongly
   consistent;
2. otherwise the intent is searched by `metadata['payment_id']`, which we set on
   every intent. Stripe's search is eventually consistent ("under normal
   operating conditions, data is searchable in less than a minute; occasionally
   ... up to an hour behind during outages", docs.stripe.com/api/payment_intents/search),
   so "not found" by search proves nothing about a young payment: query answers
   NOT_FOUND (payment-core only asks again later), refund answers "unknown" (sent
   again later, idempotent on the refund id), and close confirms CLOSED for a
   payment with no intent only once it is older than SEARCH_LAG_MAX_S.
   Refunds are not searchable at Stripe; they are listed per intent.

Idempotency: every POST that moves money carries Idempotency-Key: the payment id
for the create, "<payment id>:confirm|capture" for the follow-ups (a key is bound to
one endpoint and one set of parameters), the refund id for a refund. A retried charge
after no answer is the same intent, never a second charge (within the 24 hours
Stripe keeps keys; after that the search above still finds the first one).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final, TypeVar
from urllib.parse import quote, urlencode

from aiohttp import ClientError, ClientSession, ClientTimeout
from paykit.ids import InvalidIdError, parse_id
from paykit.money import AmountError, CurrencyError, Money

from channel_gateway.adapters.connectors.card import errors, signing, transformers
from channel_gateway.adapters.connectors.card.errors import AcquirerError
from channel_gateway.adapters.connectors.card.transformers import CardRefund, Form, Intent
from channel_gateway.domain.channel import (
    AcknowledgedOnly,
    ChannelErrorKind,
    ChannelRefused,
    ChannelUnavailable,
    ChargeCommand,
    ChargeReply,
    ChargeState,
    CloseReply,
    CloseResult,
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
RESPONSE_MAX_CHARS: Final = 8_192
STATEMENT_MAX_BYTES: Final = 64 * 1024 * 1024
# Payment id -> intent id remembered per process; beyond this the oldest is searched again.
INTENT_CACHE_MAX: Final = 10_000
# Stripe: search data is "occasionally ... up to an hour behind during outages".
SEARCH_LAG_MAX_S: Final = 3_600
# The API version our parsing is written against (Stripe-Version header).
API_VERSION: Final = "2025-04-30.basil"
STATEMENT_FORMAT: Final = "card-settlement-csv"
ACK_BODY: Final = '{"received": true}'
_CHUNK_BYTES: Final = 64 * 1024
T = TypeVar("T")
# What a transformer raises on an answer it cannot read.
_UNREADABLE = (ValueError, KeyError, TypeError, AmountError, CurrencyError)


@dataclass
class Trail:
    """The exchanges of one connector call (a charge may be a create and a capture), kept for audit
    as one RawExchange."""

    operation: str
    exchanges: list[RawExchange] = field(default_factory=list)

    def merged(self) -> RawExchange:
        if not self.exchanges:
            return RawExchange(self.operation, "", 0, "", 0)
        last = self.exchanges[-1]
        return RawExchange(
            operation=self.operation,
            request_body="\n\n".join(e.request_body for e in self.exchanges),
            response_status=last.response_status,
            response_body="\n\n".join(e.response_body for e in self.exchanges)[:RESPONSE_MAX_CHARS],
            latency_ms=sum(e.latency_ms for e in self.exchanges),
            error=last.error,
        )


@dataclass(frozen=True)
class _Answer:
    status: int
    text: str
    content_type: str
    body: bytes


class CardConnector:
    def __init__(
        self,
        api_base_url: str,
        secret_key: str,
        webhook_secret: str,
        *,
        default_payment_method: str = "",
        capture_method: str = "automatic",
        return_url: str = "",
        name: str = "card",
    ) -> None:
        self.name = name
        self._base_url = api_base_url.rstrip("/")
        self._secret_key = secret_key
        self._webhook_secret = webhook_secret
        self._default_payment_method = default_payment_method
        self._capture_method = capture_method
        self._return_url = return_url
        self._session: ClientSession | None = None
        self._intents: OrderedDict[str, str] = OrderedDict()

    def __repr__(self) -> str:
        # Never the keys.
        return f"CardConnector(name={self.name!r}, api_base_url={self._base_url!r})"

    def _http(self) -> ClientSession:
        if self._session is None:
            self._session = ClientSession(timeout=ClientTimeout(total=CHANNEL_TIMEOUT_S))
        return self._session

    # -- one exchange ------------------------------------------------------------------
    async def _exchange(
        self, trail: Trail, method: str, path: str, form: Form, idempotency_key: str
    ) -> _Answer:
        """Send one request; its record joins `trail`. ChannelUnavailable if no answer or a 5xx."""
        headers = {"Authorization": f"Bearer {self._secret_key}", "Stripe-Version": API_VERSION}
        encoded = transformers.encode(form)
        url = self._base_url + path
        if method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            if idempotency_key:
                headers["Idempotency-Key"] = idempotency_key
        elif form:
            url += "?" + urlencode(form)
        shown = f"{method} {path}\n{encoded.decode()}" if encoded else f"{method} {path}"
        started = time.monotonic()
        try:
            async with self._http().request(
                method, url, data=encoded if method == "POST" else None, headers=headers
            ) as resp:
                body = await _read_bounded(resp.content.iter_chunked(_CHUNK_BYTES))
                status, content_type = resp.status, resp.content_type
        except (ClientError, TimeoutError) as exc:
            latency_ms = int((time.monotonic() - started) * 1000)
            trail.exchanges.append(RawExchange(trail.operation, shown, 0, "", latency_ms, type(exc).__name__))
            raise ChannelUnavailable(
                f"{trail.operation}: {type(exc).__name__}: {exc}", trail.merged()
            ) from exc
        latency_ms = int((time.monotonic() - started) * 1000)
        text = body[:RESPONSE_MAX_CHARS].decode("utf-8", errors="replace")
        trail.exchanges.append(RawExchange(trail.operation, shown, status, text, latency_ms))
        if status >= 500:
            raise ChannelUnavailable(f"{trail.operation}: HTTP {status}", trail.merged())
        if len(body) > STATEMENT_MAX_BYTES:
            raise ChannelUnavailable(
                f"{trail.operation}: answer over {STATEMENT_MAX_BYTES} bytes", trail.merged()
            )
        return _Answer(status, body.decode("utf-8", errors="replace"), content_type, body)

    async def _call(
        self,
        trail: Trail,
        method: str,
        path: str,
        read: Callable[[Mapping[str, Any]], T],
        *,
        form: Form | None = None,
        idempotency_key: str = "",
        accept: Callable[[AcquirerError], bool] = lambda _: False,
    ) -> T | AcquirerError:
        """One JSON exchange: `read` the 2xx answer; an error answer is returned when `accept`s it
        (an answer about the payment, such as a decline), else becomes the error table's exception."""
        answer = await self._exchange(trail, method, path, form or [], idempotency_key)
        if 200 <= answer.status < 300:
            try:
                data = json.loads(answer.text)
                if not isinstance(data, dict):
                    raise TypeError("answer is not a JSON object")
                return read(data)
            except _UNREADABLE as exc:
                raise ChannelUnavailable(
                    f"{trail.operation}: unreadable answer ({exc})", trail.merged()
                ) from exc
        error = errors.read_error(answer.status, answer.text)
        if accept(error):
            return error
        return errors.raise_for(error, trail.operation, trail.merged())

    def _remember(self, payment_id: str, intent_id: str) -> None:
        self._intents[payment_id] = intent_id
        self._intents.move_to_end(payment_id)
        while len(self._intents) > INTENT_CACHE_MAX:
            self._intents.popitem(last=False)

    # -- the PaymentIntents operations (create, confirm, capture, cancel, retrieve) and refunds
    async def create_intent(
        self, command: ChargeCommand, trail: Trail, *, confirm: bool = True
    ) -> Intent | AcquirerError:
        """POST /v1/payment_intents (confirmed at once by default); a card error is returned as such."""
        payment_method = transformers.payment_method_for(command, self._default_payment_method)
        if not payment_method:
            raise ChannelRefused(
                ChannelErrorKind.INVALID_REQUEST,
                "NO_PAYMENT_METHOD",
                f"charge of {command.payment_id}: method {command.method!r} is not a card (pm_...) and "
                "the account has no default_payment_method",
                trail.merged(),
            )
        form = transformers.create_intent_form(
            command, payment_method, self._capture_method, self._return_url, confirm
        )

        def read(data: Mapping[str, Any]) -> Intent:
            return transformers.check_intent(
                transformers.read_intent(data), command.payment_id, command.amount
            )

        found = await self._call(
            trail, "POST", "/v1/payment_intents", read, form=form,
            idempotency_key=command.payment_id, accept=_card_error,
        )  # fmt: skip
        declined_intent = found.payment_intent if isinstance(found, AcquirerError) else None
        if isinstance(found, Intent):
            self._remember(command.payment_id, found.id)
        elif declined_intent is not None and isinstance(declined_intent.get("id"), str):
            self._remember(command.payment_id, declined_intent["id"])
        return found

    async def confirm_intent(
        self, intent_id: str, payment_id: str, payment_method: str, trail: Trail
    ) -> Intent | AcquirerError:
        """POST /v1/payment_intents/{id}/confirm; a card error is returned as such."""
        form = transformers.confirm_form(payment_method, self._return_url)
        return await self._call(
            trail, "POST", f"{_intent_path(intent_id)}/confirm", _reader(payment_id), form=form,
            idempotency_key=f"{payment_id}:confirm", accept=_card_error,
        )  # fmt: skip

    async def capture_intent(
        self, intent_id: str, payment_id: str, trail: Trail, amount: Money | None = None
    ) -> Intent | AcquirerError:
        """POST /v1/payment_intents/{id}/capture of a requires_capture intent (all of it by default)."""
        form = transformers.capture_form(amount)
        return await self._call(
            trail, "POST", f"{_intent_path(intent_id)}/capture", _reader(payment_id), form=form,
            idempotency_key=f"{payment_id}:capture", accept=_card_error,
        )  # fmt: skip

    async def cancel_intent(self, intent_id: str, payment_id: str, trail: Trail) -> Intent | AcquirerError:
        """POST /v1/payment_intents/{id}/cancel; an intent in a state that cannot be canceled is
        returned as the error (its code is payment_intent_unexpected_state).

        Sent without Idempotency-Key: a cancel is idempotent by nature (a canceled intent answers
        unexpected_state and reads as canceled), while a keyed state error would be replayed for
        24 hours, even after the intent became cancelable."""

        def unexpected_state(error: AcquirerError) -> bool:
            return bool(error.code == "payment_intent_unexpected_state")

        path = f"{_intent_path(intent_id)}/cancel"
        return await self._call(
            trail, "POST", path, _reader(payment_id), form=transformers.cancel_form(),
            accept=unexpected_state,
        )  # fmt: skip

    async def retrieve_intent(self, intent_id: str, payment_id: str, trail: Trail) -> Intent | None:
        """GET /v1/payment_intents/{id}; None when the acquirer has no such intent."""
        found = await self._call(
            trail, "GET", _intent_path(intent_id), _reader(payment_id),
            form=transformers.retrieve_params(), accept=_missing,
        )  # fmt: skip
        return found if isinstance(found, Intent) else None

    async def search_intent(self, payment_id: str, trail: Trail) -> Intent | None:
        """GET /v1/payment_intents/search by metadata['payment_id'] (eventually consistent)."""

        def read(data: Mapping[str, Any]) -> Intent | None:
            listed = transformers.read_list(data, "search_result")
            return transformers.pick_intent([transformers.read_intent(i) for i in listed], payment_id)

        found = await self._call(
            trail, "GET", "/v1/payment_intents/search", read, form=transformers.search_params(payment_id)
        )
        if not isinstance(found, Intent):
            return None
        self._remember(payment_id, found.id)
        return found

    async def find_intent(self, payment_id: str, trail: Trail) -> Intent | None:
        known = self._intents.get(payment_id)
        if known is not None:
            found = await self.retrieve_intent(known, payment_id, trail)
            if found is not None:
                self._intents.move_to_end(payment_id)
                return found
            del self._intents[payment_id]
        return await self.search_intent(payment_id, trail)

    async def create_refund(self, command: RefundCommand, intent_id: str, trail: Trail) -> CardRefund:
        """POST /v1/refunds, idempotent on our refund id."""

        def read(data: Mapping[str, Any]) -> CardRefund:
            return transformers.check_refund(
                transformers.read_refund(data), command.refund_id, command.amount
            )

        found = await self._call(
            trail, "POST", "/v1/refunds", read, form=transformers.refund_form(command, intent_id),
            idempotency_key=command.refund_id,
        )  # fmt: skip
        return _accepted_none(found)

    async def retrieve_refund(
        self, channel_refund_no: str, refund_id: str, trail: Trail
    ) -> CardRefund | None:
        """GET /v1/refunds/{id}; None when the acquirer has no such refund."""

        def read(data: Mapping[str, Any]) -> CardRefund:
            return transformers.check_refund(transformers.read_refund(data), refund_id)

        found = await self._call(
            trail, "GET", f"/v1/refunds/{quote(channel_refund_no, safe='')}", read, accept=_missing
        )
        return found if isinstance(found, CardRefund) else None

    async def list_refunds(self, intent_id: str, trail: Trail) -> list[CardRefund]:
        """GET /v1/refunds?payment_intent=... (strongly consistent, unlike search)."""

        def read(data: Mapping[str, Any]) -> list[CardRefund]:
            return [transformers.read_refund(r) for r in transformers.read_list(data, "list")]

        found = await self._call(
            trail, "GET", "/v1/refunds", read, form=transformers.list_refunds_params(intent_id)
        )
        return _accepted_none(found)

    # -- ChannelConnector ---------------------------------------------------------------
    async def charge(self, command: ChargeCommand) -> tuple[ChargeReply, RawExchange]:
        trail = Trail("charge")
        try:
            transformers.to_amount(command.amount)
        except AmountError as exc:
            raise ChannelRefused(
                ChannelErrorKind.INVALID_REQUEST, "AMOUNT_NOT_REPRESENTABLE", str(exc), trail.merged()
            ) from exc
        intent = await self.create_intent(command, trail)
        if (
            isinstance(intent, Intent)
            and intent.status == "requires_capture"
            and self._capture_method == "manual"
        ):
            # Authorised; the gateway's charge takes the money, so the capture follows at once.
            intent = await self.capture_intent(intent.id, command.payment_id, trail)
        if isinstance(intent, AcquirerError):
            return transformers.declined_reply(intent), trail.merged()
        return transformers.charge_reply(intent), trail.merged()

    async def query(self, payment_id: str) -> tuple[QueryReply, RawExchange]:
        trail = Trail("query")
        intent = await self.find_intent(payment_id, trail)
        if intent is None:
            return QueryReply(ChargeState.NOT_FOUND), trail.merged()
        return _read_or_unavailable(trail, transformers.query_reply, intent), trail.merged()

    async def close(self, payment_id: str) -> tuple[CloseReply, RawExchange]:
        trail = Trail("close")
        intent = await self.find_intent(payment_id, trail)
        if intent is None:
            return _close_without_intent(payment_id, trail), trail.merged()
        settled = transformers.close_reply(intent)
        if settled is not None:
            return settled, trail.merged()
        if intent.status in transformers.CANCELABLE_STATUSES:
            canceled = await self.cancel_intent(intent.id, payment_id, trail)
            if isinstance(canceled, Intent):
                settled = transformers.close_reply(canceled)
            else:
                # Its state moved under us (paid, or canceled already): ask what it is now.
                again = await self.retrieve_intent(intent.id, payment_id, trail)
                settled = transformers.close_reply(again) if again is not None else None
            if settled is not None:
                return settled, trail.merged()
        raise ChannelUnavailable(
            f"close of {payment_id}: intent {intent.id} is {intent.status!r}; cannot confirm a close yet",
            trail.merged(),
        )

    async def refund(self, command: RefundCommand) -> tuple[RefundReply, RawExchange]:
        trail = Trail("refund")
        try:
            transformers.to_amount(command.amount)
        except AmountError as exc:
            raise ChannelRefused(
                ChannelErrorKind.INVALID_REQUEST, "AMOUNT_NOT_REPRESENTABLE", str(exc), trail.merged()
            ) from exc
        intent = await self.find_intent(command.payment_id, trail)
        if intent is None:
            # Search may lag: the intent may exist. Nothing was sent, and sending again is safe.
            raise ChannelUnavailable(
                f"refund {command.refund_id}: no payment intent found for {command.payment_id} yet",
                trail.merged(),
            )
        refund = await self.create_refund(command, intent.id, trail)
        return transformers.refund_reply(refund), trail.merged()

    async def query_refund(self, refund_id: str, payment_id: str) -> tuple[RefundReply, RawExchange]:
        trail = Trail("query_refund")
        intent = await self.find_intent(payment_id, trail)
        if intent is None:
            return RefundReply(RefundState.NOT_FOUND), trail.merged()
        refunds = await self.list_refunds(intent.id, trail)
        ours = [r for r in refunds if r.refund_id == refund_id]
        if not ours:
            return RefundReply(RefundState.NOT_FOUND), trail.merged()
        return transformers.refund_reply(ours[0]), trail.merged()

    async def payout(self, command: PayoutCommand) -> tuple[PayoutReply, RawExchange]:
        raw = RawExchange("payout", command.settlement_id, 0, "", 0, error="not offered by the card acquirer")
        raise ChannelRefused(
            ChannelErrorKind.INVALID_REQUEST,
            "UNSUPPORTED",
            "the card acquirer pays out on its own schedule",
            raw,
        )

    async def download_statement(self, day: date) -> tuple[StatementFile, RawExchange]:
        """GET /v1/settlement_statements/{YYYY-MM-DD}: the acquirer's settlement CSV of `day`."""
        trail = Trail("download_statement")
        path = f"/v1/settlement_statements/{day.isoformat()}"
        answer = await self._exchange(trail, "GET", path, [], "")
        if not 200 <= answer.status < 300:
            errors.raise_for(errors.read_error(answer.status, answer.text), trail.operation, trail.merged())
        if answer.content_type != "text/csv":
            raise ChannelUnavailable(
                f"download_statement: answer is {answer.content_type!r}, not text/csv", trail.merged()
            )
        filename = f"card-settlement-{day.isoformat()}.csv"
        return StatementFile(day, STATEMENT_FORMAT, answer.body, filename), trail.merged()

    def verify_notification(
        self, path: str, headers: Mapping[str, str], body: bytes
    ) -> VerifiedNotification | AcknowledgedOnly:
        header = signing.header_value(headers, signing.SIGNATURE_HEADER)
        signing.verify(self._webhook_secret, header, body, time.time())
        return transformers.notification(body)

    def acknowledgement(self, accepted: bool) -> tuple[int, str]:
        # Any 2xx is "received" for Stripe; anything else is sent again, with backoff, for days.
        return (200, ACK_BODY) if accepted else (400, "rejected")

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


def _accepted_none(found: T | AcquirerError) -> T:
    """The answer of a call that accepts no error answer (so none can come back)."""
    if isinstance(found, AcquirerError):
        raise TypeError(f"an error answer was accepted where none may be: {found}")
    return found


def _intent_path(intent_id: str) -> str:
    return f"/v1/payment_intents/{quote(intent_id, safe='')}"


def _reader(payment_id: str) -> Callable[[Mapping[str, Any]], Intent]:
    def read(data: Mapping[str, Any]) -> Intent:
        return transformers.check_intent(transformers.read_intent(data), payment_id)

    return read


def _card_error(error: AcquirerError) -> bool:
    """A card error (the charge was declined) is an answer about the payment, not a failure."""
    return errors.verdict(error) is ChannelErrorKind.DECLINED


def _missing(error: AcquirerError) -> bool:
    return error.status == 404 and error.code in ("resource_missing", "")


async def _read_bounded(chunks: AsyncIterator[bytes]) -> bytes:
    """The whole body, or STATEMENT_MAX_BYTES + 1 of it when it is longer (then refused)."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > STATEMENT_MAX_BYTES:
            break
    return bytes(body[: STATEMENT_MAX_BYTES + 1])


def _read_or_unavailable(trail: Trail, read: Callable[[Intent], T], intent: Intent) -> T:
    try:
        return read(intent)
    except _UNREADABLE as exc:
        raise ChannelUnavailable(f"{trail.operation}: unreadable answer ({exc})", trail.merged()) from exc


def _close_without_intent(payment_id: str, trail: Trail) -> CloseReply:
    """No intent found: closed for good if the payment is old enough for search to show it."""
    try:
        created_s = parse_id(payment_id).timestamp_ms / 1000
    except InvalidIdError:
        created_s = None
    if created_s is None or created_s == 0 or time.time() - created_s < SEARCH_LAG_MAX_S:
        raise ChannelUnavailable(
            f"close of {payment_id}: no payment intent found, but search may lag up to "
            f"{SEARCH_LAG_MAX_S}s behind for a payment this young (or of unknown age)",
            trail.merged(),
        )
    return CloseReply(CloseResult.CLOSED, "the acquirer never received this payment")
