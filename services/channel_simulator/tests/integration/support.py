"""Driving the sandbox from synchronous tests: signed calls, admin calls, and a merchant-side
receiver that records every notification the sandbox posts."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from channel_simulator.protocols.simpay.signing import ACK_BODY, signed_headers, verify

KEY = b"test-sandbox-key"
MERCHANT_A = "SIM-MERCHANT-1"
MERCHANT_B = "SIM-MERCHANT-2"
MERCHANTS = (MERCHANT_A, MERCHANT_B)
HTTP_TIMEOUT_S = 10.0
WAIT_S = 10.0
POLL_S = 0.02


def eventually(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(POLL_S)


def new_no(prefix: str = "pay") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    # True when the answer carries a valid signature from the sandbox.
    signed: bool


@dataclass(frozen=True)
class Post:
    """One notification as the merchant received it."""

    path: str
    body: dict[str, Any]
    signature_valid: bool
    merchant: str
    received_at: float


class Receiver:
    """The merchant's notification endpoint; refuses the first N posts of a path when told to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._posts: list[Post] = []
        self._refuse: dict[str, int] = {}
        self.base_url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/notify/{name}", self._receive)
        return app

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        reason = verify(
            KEY,
            request.headers.get("X-Sim-Timestamp", ""),
            "POST",
            request.path,
            body,
            request.headers.get("X-Sim-Signature", ""),
            time.time(),
        )
        post = Post(
            request.path,
            json.loads(body),
            reason is None,
            request.headers.get("X-Sim-Merchant", ""),
            time.monotonic(),
        )
        with self._lock:
            self._posts.append(post)
            refusals = self._refuse.get(request.path, 0)
            if refusals:
                self._refuse[request.path] = refusals - 1
                return web.Response(status=500, text="busy")
        return web.Response(text=ACK_BODY)

    def new_url(self, refuse_first: int = 0) -> str:
        path = f"/notify/{uuid.uuid4().hex}"
        with self._lock:
            self._refuse[path] = refuse_first
        return self.base_url + path

    def posts(self, url: str) -> list[Post]:
        path = url[len(self.base_url) :]
        with self._lock:
            return [p for p in self._posts if p.path == path]


class SimClient:
    def __init__(self, base_url: str, key: bytes = KEY) -> None:
        self.base_url = base_url
        self.key = key

    # -- signed API ------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None = None,
        *,
        merchant: str = MERCHANT_A,
        key: bytes | None = None,
        timeout_s: float = HTTP_TIMEOUT_S,
    ) -> Answer:
        body = json.dumps(payload).encode() if payload is not None else b""
        headers = signed_headers(merchant, key or self.key, method, path, body, time.time())
        request = urllib.request.Request(
            self.base_url + path, data=body or None, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as resp:
                return self._answer(resp.status, resp.read(), resp.headers, method, path)
        except urllib.error.HTTPError as exc:
            return self._answer(exc.code, exc.read(), exc.headers, method, path)

    def _answer(self, status: int, raw: bytes, headers: Any, method: str, path: str) -> Answer:
        reason = verify(
            self.key,
            headers.get("X-Sim-Timestamp", ""),
            method,
            path,
            raw,
            headers.get("X-Sim-Signature", ""),
            time.time(),
        )
        return Answer(status, json.loads(raw), reason is None)

    def charge(
        self,
        out_trade_no: str,
        notify_url: str,
        amount: str = "19.99",
        currency: str = "CNY",
        subject: str = "",
        *,
        merchant: str = MERCHANT_A,
        timeout_s: float = HTTP_TIMEOUT_S,
    ) -> Answer:
        payload = {
            "out_trade_no": out_trade_no,
            "amount": amount,
            "currency": currency,
            "subject": subject,
            "notify_url": notify_url,
        }
        return self.call("POST", "/v1/charges", payload, merchant=merchant, timeout_s=timeout_s)

    def query(self, out_trade_no: str, merchant: str = MERCHANT_A) -> Answer:
        return self.call("GET", f"/v1/charges/{out_trade_no}", merchant=merchant)

    def close(self, out_trade_no: str, merchant: str = MERCHANT_A) -> Answer:
        return self.call("POST", f"/v1/charges/{out_trade_no}/close", merchant=merchant)

    def refund(
        self,
        out_refund_no: str,
        out_trade_no: str,
        amount: str,
        notify_url: str,
        currency: str = "CNY",
        *,
        merchant: str = MERCHANT_A,
    ) -> Answer:
        payload = {
            "out_refund_no": out_refund_no,
            "out_trade_no": out_trade_no,
            "amount": amount,
            "currency": currency,
            "notify_url": notify_url,
            "reason": "customer asked",
        }
        return self.call("POST", "/v1/refunds", payload, merchant=merchant)

    def query_refund(self, out_refund_no: str, merchant: str = MERCHANT_A) -> Answer:
        return self.call("GET", f"/v1/refunds/{out_refund_no}", merchant=merchant)

    def payout(
        self,
        out_payout_no: str,
        amount: Any = "100.00",
        currency: str = "CNY",
        merchant_ref: str = "mch_beneficiary_1",
        *,
        merchant: str = MERCHANT_A,
    ) -> Answer:
        payload = {
            "out_payout_no": out_payout_no,
            "merchant_ref": merchant_ref,
            "amount": amount,
            "currency": currency,
        }
        return self.call("POST", "/v1/payouts", payload, merchant=merchant)

    def query_payout(self, out_payout_no: str, merchant: str = MERCHANT_A) -> Answer:
        return self.call("GET", f"/v1/payouts/{out_payout_no}", merchant=merchant)

    # -- admin ------------------------------------------------------------------------
    def admin(self, path: str, payload: Any = None, raw: bytes | None = None) -> tuple[int, Any]:
        data = raw if raw is not None else (json.dumps(payload).encode() if payload is not None else None)
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method="POST" if data is not None else "GET",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def configure(self, changes: dict[str, Any], merchant: str | None = None) -> Any:
        suffix = f"?merchant={merchant}" if merchant else ""
        status, body = self.admin("/v1/admin/config" + suffix, changes)
        assert status == 200, body
        return body

    def trades(self, merchant: str | None = None) -> list[dict[str, Any]]:
        suffix = f"?merchant={merchant}" if merchant else ""
        status, body = self.admin("/v1/admin/trades" + suffix)
        assert status == 200, body
        return list(body)

    def trade(self, out_trade_no: str, merchant: str = MERCHANT_A) -> dict[str, Any] | None:
        return next((t for t in self.trades(merchant) if t["out_trade_no"] == out_trade_no), None)

    def payouts(self, merchant: str | None = None) -> list[dict[str, Any]]:
        suffix = f"?merchant={merchant}" if merchant else ""
        status, body = self.admin("/v1/admin/payouts" + suffix)
        assert status == 200, body
        return list(body)

    def payouts_numbered(self, out_payout_no: str, merchant: str | None = None) -> list[dict[str, Any]]:
        return [p for p in self.payouts(merchant) if p["out_payout_no"] == out_payout_no]

    def summary(self, merchant: str | None = None) -> dict[str, Any]:
        suffix = f"?merchant={merchant}" if merchant else ""
        status, body = self.admin("/v1/admin/summary" + suffix)
        assert status == 200, body
        return dict(body["merchants"])

    def settle(self) -> None:
        """Wait until no refund of any merchant is still PROCESSING (an earlier test's)."""
        eventually(
            lambda: all(r["status"] != "PROCESSING" for t in self.trades() for r in t["refunds"]),
            "every refund to finish",
        )

    def wait_status(self, out_trade_no: str, status: str, merchant: str = MERCHANT_A) -> None:
        eventually(
            lambda: self.query(out_trade_no, merchant).body.get("result") == status,
            f"trade {out_trade_no} to be {status}",
        )

    def wait_refund(self, out_refund_no: str, status: str, merchant: str = MERCHANT_A) -> None:
        eventually(
            lambda: self.query_refund(out_refund_no, merchant).body.get("result") == status,
            f"refund {out_refund_no} to be {status}",
        )

    def paid_trade(self, receiver: Receiver, amount: str = "100.00", subject: str = "") -> tuple[str, str]:
        """A trade paid at merchant A: (out_trade_no, notify_url)."""
        out_trade_no, url = new_no(), receiver.new_url()
        answer = self.charge(out_trade_no, url, amount, subject=f"sim:pay_delay=0 {subject}")
        assert answer.body["result"] == "PENDING", answer
        self.wait_status(out_trade_no, "SUCCESS")
        return out_trade_no, url
