"""The card acquirer as a protocol plugin: its routes under /card/v1, its keys, its webhooks, its
settlement statement."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from datetime import date
from typing import Any, Final

from aiohttp import web

from channel_simulator.accounts import MerchantAccount, StatementExtra
from channel_simulator.edge import JsonError
from channel_simulator.protocols.base import Notice, PaymentNotice, Protocol, ProtocolFactory
from channel_simulator.protocols.card import intents, refunds, settlement, webhooks
from channel_simulator.protocols.card.accounts import BATCH_MAX_CAPTURES, CardAccount, batch_of, new_id
from channel_simulator.protocols.card.http import MAX_REQUESTS_IN_FLIGHT, Call, CardEdge, Reply
from channel_simulator.protocols.card.settlement import AmbiguousCurrency, batch_capture, batch_refund
from channel_simulator.protocols.card.views import event, intent_view, payment_event_type, refund_view
from channel_simulator.protocols.card.wire import API_PATH, NAME, PREFIX, CardError, invalid
from channel_simulator.sandbox import Sandbox

REFUND_EVENT: Final = "refund.updated"
USER_AGENT: Final = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
_DAY: Final = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class CardProtocol(Protocol):
    name = NAME
    prefix = PREFIX

    def __init__(
        self,
        sandbox: Sandbox,
        *,
        batch_max_captures: int = BATCH_MAX_CAPTURES,
        max_requests_in_flight: int = MAX_REQUESTS_IN_FLIGHT,
    ) -> None:
        if batch_max_captures < 1 or max_requests_in_flight < 1:
            raise ValueError("batch_max_captures and max_requests_in_flight must be at least 1")
        self.sandbox = sandbox
        self.accounts = {
            account_id: CardAccount.generate(account_id, merchant.number, batch_max_captures)
            for account_id, merchant in sandbox.merchants.items()
        }
        for account in self.accounts.values():
            sandbox.register_merchant(NAME, account.card_id, account.account_id)
        self.edge = CardEdge(self, self.accounts, max_requests_in_flight)

    @classmethod
    def with_options(cls, **options: Any) -> ProtocolFactory:
        """A factory for a registry, with smaller limits (tests: batches of 2, a rate limit of 1)."""
        return lambda sandbox: cls(sandbox, **options)

    def routes(self) -> Sequence[web.RouteDef]:
        route, base = self.edge.route, API_PATH
        return [
            route("POST", f"{base}/payment_intents", intents.create_intent),
            # Before {id}: "search" is not an intent id.
            route("GET", f"{base}/payment_intents/search", intents.search_intents),
            route("GET", f"{base}/payment_intents/{{id}}", intents.retrieve_intent),
            route("POST", f"{base}/payment_intents/{{id}}/confirm", intents.confirm_intent),
            route("POST", f"{base}/payment_intents/{{id}}/capture", intents.capture_intent),
            route("POST", f"{base}/payment_intents/{{id}}/cancel", intents.cancel_intent),
            route("POST", f"{base}/refunds", refunds.create_refund),
            route("GET", f"{base}/refunds", refunds.list_refunds),
            route("GET", f"{base}/refunds/{{id}}", refunds.retrieve_refund),
            route("POST", f"{base}/webhook_endpoints", webhooks.create_endpoint),
            route("GET", f"{base}/webhook_endpoints", webhooks.list_endpoints),
            route("DELETE", f"{base}/webhook_endpoints/{{id}}", webhooks.delete_endpoint),
            route("GET", f"{base}/settlement_statements/{{day}}", self._statement),
        ]

    def credentials(self, merchants: Sequence[MerchantAccount]) -> dict[str, Any]:
        """Per sandbox account: what channel_gateway's card sandbox.account_config takes."""
        return {
            "merchants": {
                m.merchant_id: {
                    "account_id": self.accounts[m.merchant_id].card_id,
                    "secret_key": self.accounts[m.merchant_id].secret_key,
                    "webhook_secret": self.accounts[m.merchant_id].webhook_secret,
                    "api_path": PREFIX,
                }
                for m in merchants
            }
        }

    # -- webhooks -----------------------------------------------------------------------
    def _event_type(self, notice: Notice) -> str:
        return payment_event_type(notice.trade) if isinstance(notice, PaymentNotice) else REFUND_EVENT

    def destination(self, notice: Notice) -> str | None:
        endpoint = self.accounts[notice.merchant.merchant_id].endpoint
        if endpoint is None or not endpoint.wants(self._event_type(notice)):
            return None
        return endpoint.url

    def format_notification(self, notice: Notice) -> bytes:
        batches = self.accounts[notice.merchant.merchant_id].batches
        if isinstance(notice, PaymentNotice):
            batch_capture(batches, notice.trade)
            obj = intent_view(notice.trade)
        else:
            batch_refund(batches, notice.refund)
            obj = refund_view(notice.trade, notice.refund)
        # A fresh id per event; its copies and retries carry the same body, so the same id.
        body = event(new_id("evt"), self._event_type(notice), obj, int(time.time()))
        return json.dumps(body).encode()

    def sign_notification(self, notice: Notice, url: str, body: bytes, now_s: float) -> dict[str, str]:
        secret = self.accounts[notice.merchant.merchant_id].webhook_secret
        return {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            webhooks.SIGNATURE_HEADER: webhooks.signature_header(secret, body, now_s),
        }

    def is_acknowledged(self, status: int, body: bytes) -> bool:
        return 200 <= status < 300

    # -- settlement ---------------------------------------------------------------------
    def statement_file(self, merchant: MerchantAccount, day: date, currency: str | None) -> bytes | None:
        """The settlement statement of `day` in `currency` (the day's only one when None);
        None when nothing settled; AmbiguousCurrency when None names several."""
        account = self.accounts[merchant.merchant_id]
        items = settlement.day_items(merchant, NAME, account.batches, day)
        extras = merchant.statement_extras_of(NAME, day)
        chosen = settlement.currency_of_day(items, currency, extras)
        if chosen is None:
            return None
        lines = settlement.statement_lines(items, chosen)
        # One invented batch per planted line that names no record of the acquirer's.
        invented = iter(range(1, len(extras) + 1))

        def batch_for(extra: StatementExtra) -> str:
            found = merchant.refund(NAME, extra.out_refund_no) if extra.out_refund_no else None
            record = found or merchant.trade(NAME, extra.out_trade_no)
            batch_id = batch_of(record) if record is not None else None
            return batch_id or settlement.planted_batch(merchant.number, day, next(invented))

        lines = settlement.planted_lines(lines, extras, chosen, batch_for)
        return settlement.render(account.card_id, day, lines, chosen)

    def statement(self, merchant: MerchantAccount, day: date) -> bytes | None:
        """The day's statement when it settled in one currency (the plugin interface names none)."""
        try:
            return self.statement_file(merchant, day, None)
        except AmbiguousCurrency as exc:
            # Answered, not a crash, by whichever HTTP edge asked (the admin panel's statement).
            raise JsonError(400, {"error": "AMBIGUOUS_CURRENCY", "message": str(exc)}) from exc

    async def _statement(self, call: Call) -> Reply:
        """GET /card/v1/settlement_statements/{yyyy-mm-dd}[?currency=usd]: text/csv, or 404
        resource_missing when nothing settled that day (the format has no empty file)."""
        call.params.only(frozenset({"currency"}))
        text = call.request.match_info["day"]
        try:
            if not _DAY.fullmatch(text):
                raise ValueError(text)
            day = date.fromisoformat(text)
        except ValueError:
            raise invalid(f"{text!r} is not a day (yyyy-mm-dd)", "day") from None
        currency = call.params.text("currency")
        if currency and not re.fullmatch(r"[a-z]{3}", currency):
            raise invalid(f"Invalid currency: {currency!r} (a lowercase ISO 4217 code)", "currency")
        try:
            content = self.statement_file(call.merchant, day, currency.upper() or None)
        except AmbiguousCurrency as exc:
            raise invalid(str(exc), "currency") from exc
        if content is None:
            raise CardError(
                404,
                "invalid_request_error",
                f"No settlement statement for {day}: nothing settled that day",
                code="resource_missing",
            )
        return Reply(200, content, "text/csv; charset=utf-8")
