"""The card acquirer's webhooks: the endpoint an account registers, and the events' signature.

No notify_url travels with a card request: as at Stripe, the merchant registers its endpoint
once (POST /v1/webhook_endpoints url, enabled_events[]) and every event of the account goes
there. The sandbox keeps one endpoint per account (a second is refused until the first is
deleted; Stripe allows 16) and signs every event with the account's webhook secret, the one
published in the sandbox credentials (Stripe gives each endpoint its own; the creation
answer's `secret` is that same one). Without an endpoint, no event is sent.

Signature (https://docs.stripe.com/webhooks#verify-manually):
    Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret as UTF-8, "<t>." + raw body)>
with a fresh t on every attempt. Any 2xx answer acknowledges an event.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from typing import Any, Final
from urllib.parse import urlsplit

from channel_simulator.limits import MAX_URL_CHARS
from channel_simulator.protocols.card import wire
from channel_simulator.protocols.card.accounts import WebhookEndpoint, new_id
from channel_simulator.protocols.card.http import Call, Reply
from channel_simulator.protocols.card.wire import invalid

SIGNATURE_HEADER: Final = "Stripe-Signature"
MAX_ENABLED_EVENTS: Final = 100
_EVENT_TYPE: Final = re.compile(r"\*|[a-z_]+(\.[a-z_]+)+")


def signature_header(secret: str, body: bytes, now_s: float) -> str:
    timestamp = str(int(now_s))
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def _endpoint_view(endpoint: WebhookEndpoint, secret: str | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": endpoint.id,
        "object": "webhook_endpoint",
        "url": endpoint.url,
        "enabled_events": list(endpoint.enabled_events),
        "status": "enabled",
        "api_version": None,
        "created": endpoint.created_s,
        "livemode": False,
    }
    if secret is not None:
        # Stripe shows the secret only in the creation answer.
        view["secret"] = secret
    return view


async def create_endpoint(call: Call) -> Reply:
    call.params.only(
        frozenset({"url", "description", "api_version"}), frozenset({"enabled_events", "metadata"})
    )
    url = call.params.required("url", max_chars=MAX_URL_CHARS)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid("url must be an absolute http(s) URL", "url")
    events = call.params.listed("enabled_events")
    if not events or len(events) > MAX_ENABLED_EVENTS or not all(_EVENT_TYPE.fullmatch(e) for e in events):
        raise invalid(f"enabled_events: 1 to {MAX_ENABLED_EVENTS} event types, or '*'", "enabled_events")
    account = call.account
    if account.endpoint is not None:
        return Reply.error(
            invalid(
                f"The sandbox keeps one webhook endpoint per account: delete {account.endpoint.id} first",
                "url",
                "webhook_endpoint_limit",
            )
        )
    account.endpoint = WebhookEndpoint(new_id("we"), url, tuple(events), int(time.time()))
    return Reply.json(_endpoint_view(account.endpoint, account.webhook_secret))


async def list_endpoints(call: Call) -> Reply:
    call.params.only(frozenset({"limit"}))
    found = [] if call.account.endpoint is None else [_endpoint_view(call.account.endpoint)]
    return Reply.json(
        {"object": "list", "data": found, "has_more": False, "url": f"{wire.API_PATH}/webhook_endpoints"}
    )


async def delete_endpoint(call: Call) -> Reply:
    call.params.only(frozenset())
    endpoint_id = call.request.match_info["id"]
    if call.account.endpoint is None or call.account.endpoint.id != endpoint_id:
        raise wire.missing("webhook_endpoint", endpoint_id)
    call.account.endpoint = None
    return Reply.json({"id": endpoint_id, "object": "webhook_endpoint", "deleted": True})
