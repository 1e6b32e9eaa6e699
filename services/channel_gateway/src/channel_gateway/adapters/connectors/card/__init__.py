"""A card acquirer speaking Stripe's PaymentIntents API (kind "card").

Modules: transformers (wire models; the only place money converts), errors (the
error table, with its sources), signing (Stripe-Signature webhooks), connector
(the HTTP calls), sandbox (an account at the channel simulator).

Config (the channel account, stored encrypted):

    {"api_base_url": "https://api.stripe.com",      # no trailing /v1
     "secret_key": "sk_test_...",                    # or rk_... (restricted key)
     "webhook_secret": "whsec_...",                  # the endpoint's signing secret
     "default_payment_method": "pm_card_visa",       # optional; test mode only
     "capture_method": "automatic",                  # optional: automatic | manual
     "return_url": "https://..."}                    # optional: where 3-D Secure redirects back

ChargeCommand has no field for a card: its `method` is taken as the card when it
is a PaymentMethod id ("pm_...", tokenised by the payer's browser at the
acquirer); otherwise the account's default_payment_method is charged (a Stripe
test card, for sandboxes and tests; refused with a live key), and without one the
charge is refused (INVALID_REQUEST, NO_PAYMENT_METHOD) before anything is sent.

Webhooks are not asked per request (notify_url is not sent): the endpoint
`<gateway>/webhooks/<channel>` is registered at the acquirer for the events
payment_intent.succeeded, payment_intent.payment_failed, charge.refunded and
refund.updated. A genuine (signature-verified) event of another type, or about a
refund still pending, is acknowledged and stored but acted on nowhere
(AcknowledgedOnly): refused, Stripe would send it again for days.

Wire behaviour expected from the acquirer (what the channel simulator's "card"
protocol must do; a subset of Stripe's API, https://docs.stripe.com/api):

Every request: `Authorization: Bearer <secret_key>` (else 401
`{"error": {"type": "invalid_request_error", "message": ...}}`) and
`Stripe-Version: 2025-04-30.basil` (may be ignored). POST bodies are
`application/x-www-form-urlencoded` with bracket keys (`metadata[payment_id]=...`,
`payment_method_types[0]=card`), GET parameters in the query string
(`expand[0]=latest_charge`). Every POST carries `Idempotency-Key`: the same key
with the same parameters is answered with the first answer (status and body, 5xx
included); the same key with other parameters or another path is 400 or 409
`{"error": {"type": "idempotency_error"}}`; while the first is running, 409 with
code `idempotency_key_in_use`. Keys: payment id (create), "<payment id>:confirm",
"<payment id>:capture", refund id (refund); a cancel carries none. Amounts are integers in Stripe's
smallest unit (cents; yen; ISK x100; three-decimal currencies ending in 0),
currencies lowercase ISO 4217. Answers are JSON.

- POST /v1/payment_intents  amount, currency, payment_method, payment_method_types[0]=card,
  capture_method (automatic|manual), description, metadata[payment_id], metadata[order_id],
  confirm=true [, return_url]. 200: a PaymentIntent
  `{"id": "pi_...", "object": "payment_intent", "amount", "amount_received", "currency",
  "status", "capture_method", "metadata": {"payment_id", "order_id"} (echoed),
  "last_payment_error": null | {"type", "code", "decline_code", "message"},
  "next_action": null | {"type": "redirect_to_url", "redirect_to_url": {"url"}},
  "latest_charge": "ch_..." | {"id", "created"} (object when expanded) | null, "created"}`
  with status succeeded (capture_method automatic), requires_capture (manual),
  requires_action (3-D Secure: next_action redirect) or processing. A declined card
  is 402 `{"error": {"type": "card_error", "code": "card_declined", "decline_code":
  "insufficient_funds", "message", "payment_intent": {the intent, status
  requires_payment_method, last_payment_error set}}}`. Stripe's test cards are the
  natural switches: pm_card_visa succeeds, pm_card_visa_chargeDeclined declines
  (card_declined/generic_decline), pm_card_visa_chargeDeclinedInsufficientFunds
  declines (insufficient_funds), pm_card_threeDSecure2Required needs an action.
- GET /v1/payment_intents/{id}[?expand[0]=latest_charge]  the intent; 404
  `{"error": {"type": "invalid_request_error", "code": "resource_missing"}}` if none.
- GET /v1/payment_intents/search?query=metadata['payment_id']:'<id>'&limit=10&expand[0]=data.latest_charge
  `{"object": "search_result", "data": [intents], "has_more": false}` (only this
  query form is sent; it may lag behind writes, as Stripe's does).
- POST /v1/payment_intents/{id}/confirm  payment_method [, return_url].
- POST /v1/payment_intents/{id}/capture  [amount_to_capture]: requires_capture -> succeeded.
- POST /v1/payment_intents/{id}/cancel  cancellation_reason=abandoned: -> canceled; an intent
  already succeeded, canceled or processing is 400 with code
  payment_intent_unexpected_state (and the intent under error.payment_intent).
- POST /v1/refunds  payment_intent, amount, metadata[refund_id], metadata[payment_id],
  metadata[reason]: a Refund `{"id": "re_...", "object": "refund", "amount", "currency",
  "status": pending|succeeded|failed|canceled|requires_action, "payment_intent",
  "metadata" (echoed), "failure_reason", "created"}`; more than is left to refund is
  400 invalid_request_error (code amount_too_large or charge_already_refunded).
- GET /v1/refunds?payment_intent=pi_...&limit=100  `{"object": "list", "data": [refunds], "has_more"}`.
- GET /v1/refunds/{id}  a refund, or 404 resource_missing.
- GET /v1/settlement_statements/{YYYY-MM-DD}  (the acquirer's own, not Stripe's: Stripe
  reports through Reporting runs) 200 `text/csv; charset=utf-8`, format "card-settlement-csv":
  header `settlement_date,type,payment_intent,charge,refund,payment_id,refund_id,currency,amount,
  fee,net,created_at` (one line),
  one line per settled charge (type "charge") or refund (type "refund", negative amount),
  amounts in the smallest unit as above, currency lowercase, created_at ISO 8601 UTC;
  404 resource_missing while that day's statement is not ready.
- Errors: `{"error": {"type", "code", "decline_code", "message"}}` with 400/401/402/403/404/
  409/429 as Stripe uses them (see errors.py); a 5xx or no answer leaves the outcome unknown.
- Webhooks: POST to the registered endpoint, `Content-Type: application/json`,
  `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256(webhook_secret as UTF-8, "<t>." + raw body)>`,
  body an event `{"id": "evt_...", "object": "event", "type", "created", "livemode",
  "data": {"object": {...}}}`: payment_intent.succeeded / .payment_failed carry the
  intent (metadata.payment_id, amount_received / amount); refund.updated carries the
  refund when it becomes succeeded, failed or canceled (metadata.refund_id,
  metadata.payment_id); charge.refunded carries the charge with `refunds: {"object":
  "list", "data": [...]}`. Any 2xx answer acknowledges; otherwise the same event (same
  id, a fresh t and signature) is sent again later.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from channel_gateway.adapters.connectors.card.connector import CardConnector

REQUIRED_KEYS: Final = ("api_base_url", "secret_key", "webhook_secret")
CAPTURE_METHODS: Final = frozenset({"automatic", "manual"})
_SECRET_KEY_PREFIXES: Final = ("sk_", "rk_")
_LIVE_KEY_PREFIXES: Final = ("sk_live_", "rk_live_")


def _problems(config: Mapping[str, Any]) -> list[str]:
    """What is wrong with a config, by key name only (values are keys: never shown)."""
    problems = [
        f"{k} (missing or not non-empty text)"
        for k in REQUIRED_KEYS
        if not isinstance(config.get(k), str) or not config[k].strip()
    ]
    base = config.get("api_base_url")
    if isinstance(base, str) and base.strip():
        parts = urlsplit(base)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or parts.path.rstrip("/").endswith("/v1")
        ):
            problems.append("api_base_url (an http(s) URL without /v1)")
    secret = config.get("secret_key")
    if isinstance(secret, str) and secret.strip() and not secret.startswith(_SECRET_KEY_PREFIXES):
        problems.append("secret_key (a secret or restricted key: sk_... or rk_...)")
    for key in ("default_payment_method", "capture_method", "return_url"):
        if key in config and not isinstance(config[key], str):
            problems.append(f"{key} (text)")
    method = config.get("default_payment_method") or ""
    if isinstance(method, str) and method:
        if not method.startswith("pm_"):
            problems.append("default_payment_method (a PaymentMethod id, pm_...)")
        if isinstance(secret, str) and secret.startswith(_LIVE_KEY_PREFIXES):
            problems.append("default_payment_method (test mode only: the key is live)")
    if config.get("capture_method", "automatic") not in CAPTURE_METHODS:
        problems.append(f"capture_method (one of {', '.join(sorted(CAPTURE_METHODS))})")
    return problems


def build(channel: str, config: Mapping[str, Any]) -> CardConnector:
    """A connector for one acquirer account; ValueError naming every bad key (never its value)."""
    problems = _problems(config)
    if problems:
        raise ValueError(f"config needs {'; '.join(problems)}")
    return CardConnector(
        config["api_base_url"].strip(),
        config["secret_key"].strip(),
        config["webhook_secret"],
        default_payment_method=config.get("default_payment_method") or "",
        capture_method=config.get("capture_method") or "automatic",
        return_url=config.get("return_url") or "",
        name=channel,
    )
