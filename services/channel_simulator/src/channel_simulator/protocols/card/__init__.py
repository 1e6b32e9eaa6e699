""" "card", a card acquirer speaking (a subset of) Stripe's PaymentIntents API, under /card/v1.

It is the real stand-in for channel_gateway's card connector (connectors/card/__init__.py
states the wire behaviour this follows). Modules: wire.py (form parameters, integer amounts,
errors), http.py (secret key, outage, rate limit, Idempotency-Key replay), intents.py and
refunds.py (the handlers), webhooks.py (the endpoint and Stripe-Signature), views.py (the JSON
objects), settlement.py (batches, fees, the settlement statement), accounts.py (per-account
state), protocol.py (the plugin).

Credentials (GET /v1/admin/sandbox-credentials, key "card"), generated at start-up, for local
use only:
    {"merchants": {<account id>: {"account_id": "acct_...", "secret_key": "sk_test_...",
                                  "webhook_secret": "whsec_...", "api_path": "/card"}}}

Every call: `Authorization: Bearer <secret_key>` (401 otherwise); an account whose
behaviour is `unavailable` answers 503 api_error; more than MAX_REQUESTS_IN_FLIGHT requests
of an account at once are answered 429 rate_limit. POST bodies are form-encoded with
bracket keys; unknown parameters are refused (400 parameter_unknown). Idempotency-Key on a
POST replays the first answer (header Idempotent-Replayed: true); the same key with other
parameters is 400 idempotency_error, while the first runs 409 idempotency_key_in_use.

    POST   /card/v1/payment_intents              amount, currency, payment_method, capture_method,
                                                 description, metadata[...], confirm, return_url
    GET    /card/v1/payment_intents/search       query=metadata['k']:'v', limit, expand[]
    GET    /card/v1/payment_intents/{id}         expand[]=latest_charge
    POST   /card/v1/payment_intents/{id}/confirm payment_method, return_url
    POST   /card/v1/payment_intents/{id}/capture [amount_to_capture = the whole authorisation]
    POST   /card/v1/payment_intents/{id}/cancel  cancellation_reason; 400 payment_intent_unexpected_state
                                                 when succeeded or canceled
    POST   /card/v1/refunds                      payment_intent (or charge), amount, reason, metadata[...]
    GET    /card/v1/refunds?payment_intent=...   newest first
    GET    /card/v1/refunds/{id}
    POST   /card/v1/webhook_endpoints            url, enabled_events[] (one endpoint per account)
    GET    /card/v1/webhook_endpoints, DELETE /card/v1/webhook_endpoints/{id}
    GET    /card/v1/settlement_statements/{yyyy-mm-dd}[?currency=usd]   text/csv (settlement.py)

Test cards (payment_method): pm_card_visa and any other pm_... succeed; Stripe's declining
test cards (pm_card_chargeDeclined, pm_card_visa_chargeDeclinedInsufficientFunds, ... see
intents.DECLINING_CARDS) are 402 card_error with their decline_code; 3-D Secure cards
(pm_card_threeDSecure2Required) answer requires_action and succeed once the simulated payer
authenticates. `sim:` directives go in `description`.

Webhooks (webhooks.py): payment_intent.succeeded, payment_intent.payment_failed and
refund.updated (refund succeeded or failed), to the account's registered endpoint, signed
Stripe-Signature t=,v1= with the webhook secret; any 2xx acknowledges.
"""

from channel_simulator.protocols.card.protocol import CardProtocol

__all__ = ["CardProtocol"]
