"""Driving the card protocol from synchronous tests: a real aiohttp client on the loop thread,
and a webhook endpoint that records (and, when told, refuses or delays) what the acquirer posts."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from channel_simulator.harness import LoopThread

Form = Sequence[tuple[str, str]] | Mapping[str, str]
HTTP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    raw: bytes

    @property
    def body(self) -> Any:
        return json.loads(self.raw)

    @property
    def error(self) -> dict[str, Any]:
        return dict(self.body["error"])


class CardClient:
    """One account's API client: Bearer key, form-encoded POSTs, optional Idempotency-Key."""

    def __init__(self, loop: LoopThread, base_url: str, secret_key: str) -> None:
        self.loop = loop
        self.base_url = base_url
        self.secret_key = secret_key

    def call(
        self,
        method: str,
        path: str,
        form: Form = (),
        *,
        idempotency_key: str | None = None,
        key: str | None = None,
        timeout_s: float = HTTP_TIMEOUT_S,
    ) -> Answer:
        headers = {"Authorization": f"Bearer {key if key is not None else self.secret_key}"}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        encoded = urlencode(list(form.items()) if isinstance(form, Mapping) else list(form))
        url = self.base_url + path
        data = None
        if method == "POST":
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            data = encoded.encode()
        elif encoded:
            url += "?" + encoded
        return self.loop.run(self.send(method, url, headers, data, timeout_s), timeout_s + 5)

    async def send(
        self, method: str, url: str, headers: dict[str, str], data: bytes | None, timeout_s: float
    ) -> Answer:
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(method, url, headers=headers, data=data) as resp,
        ):
            return Answer(resp.status, dict(resp.headers), await resp.read())

    def post(self, path: str, form: Form = (), **options: Any) -> Answer:
        return self.call("POST", "/card/v1" + path, form, **options)

    def get(self, path: str, query: Form = (), **options: Any) -> Answer:
        return self.call("GET", "/card/v1" + path, query, **options)

    def create_intent(
        self,
        payment_id: str,
        amount: int = 1999,
        currency: str = "usd",
        payment_method: str = "pm_card_visa",
        *,
        description: str = "",
        capture_method: str = "automatic",
        confirm: bool = True,
        idempotency_key: str | None = None,
        extra: Sequence[tuple[str, str]] = (),
    ) -> Answer:
        form = [
            ("amount", str(amount)),
            ("currency", currency),
            ("payment_method", payment_method),
            ("payment_method_types[0]", "card"),
            ("capture_method", capture_method),
            ("description", description),
            ("metadata[payment_id]", payment_id),
            ("metadata[order_id]", f"ord_{payment_id}"),
            ("confirm", "true" if confirm else "false"),
            *extra,
        ]
        return self.post("/payment_intents", form, idempotency_key=idempotency_key or payment_id)

    def webhooks_to(self, url: str, events: Sequence[str] = ("*",)) -> Answer:
        """Make `url` the account's one webhook endpoint (the one before is deleted)."""
        for endpoint in self.get("/webhook_endpoints").body["data"]:
            self.call("DELETE", f"/card/v1/webhook_endpoints/{endpoint['id']}")
        form = [("url", url), *((f"enabled_events[{i}]", e) for i, e in enumerate(events))]
        return self.post("/webhook_endpoints", form)


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return dict(json.loads(self.body))


class WebhookEndpoint:
    """The merchant's endpoint; per path, refuses the first N posts (500) or holds each for a while."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._deliveries: list[Delivery] = []
        self._refuse: dict[str, int] = {}
        self._hold_s: dict[str, float] = {}
        self.base_url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/hooks/{name}", self._receive)
        return app

    async def _receive(self, request: web.Request) -> web.Response:
        delivery = Delivery(request.path, dict(request.headers), await request.read())
        with self._lock:
            self._deliveries.append(delivery)
            refusals = self._refuse.get(request.path, 0)
            if refusals:
                self._refuse[request.path] = refusals - 1
            hold_s = self._hold_s.get(request.path, 0.0)
        if hold_s:
            await asyncio.sleep(hold_s)
        if refusals:
            return web.Response(status=500, text="busy")
        return web.json_response({"received": True})

    def new_url(self, refuse_first: int = 0, hold_s: float = 0.0) -> str:
        path = f"/hooks/{uuid.uuid4().hex}"
        with self._lock:
            self._refuse[path] = refuse_first
            self._hold_s[path] = hold_s
        return self.base_url + path

    def deliveries(self, url: str) -> list[Delivery]:
        path = url[len(self.base_url) :]
        with self._lock:
            return [d for d in self._deliveries if d.path == path]


async def start_endpoint(endpoint: WebhookEndpoint) -> web.AppRunner:
    runner = web.AppRunner(endpoint.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    endpoint.base_url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    return runner
