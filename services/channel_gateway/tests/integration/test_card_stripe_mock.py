"""The card connector's requests against stripe-mock (Stripe's API mock, driven by Stripe's OpenAPI
spec): every operation is accepted as Stripe's and its answer parsed; an invalid request is
answered 400 and becomes INVALID_REQUEST.

stripe-mock is stateless and answers fixtures (it reflects parameters it recognises, such as the
amount), so these tests assert shapes, fields and status codes, not business outcomes; those are
in test_card_connector.py. stripe-mock is the one deploy/install-deps.sh builds into
.run/tools/bin (installed here through `install-deps.sh stripe-mock` when missing, never
skipped), started on loopback on ports the system chooses, and stopped by its pid.
"""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from channel_gateway.adapters.connectors.card import transformers
from channel_gateway.adapters.connectors.card.connector import CardConnector, Trail
from channel_gateway.adapters.connectors.card.transformers import CardRefund, Intent
from channel_gateway.domain.channel import (
    ChannelErrorKind,
    ChannelRefused,
    ChargeCommand,
    ChargeState,
    QueryReply,
    RefundCommand,
    RefundState,
)
from paykit.ids import IdKind, new_id
from paykit.money import Money

REPO_ROOT = Path(__file__).resolve().parents[4]
STRIPE_MOCK = REPO_ROOT / ".run" / "tools" / "bin" / "stripe-mock"
# stripe-mock accepts any key that looks like a test-mode secret key.
SECRET_KEY = "sk_test_123"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
LOG_LINES_KEPT = 200
_LISTENING = re.compile(r"Listening for HTTP at address: 127\.0\.0\.1:(\d+)")
USD_19_99 = Money(1999, "USD")
T = TypeVar("T")

# Building stripe-mock from source (only when .run/tools/bin has none) takes a minute or two.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def stripe_mock_binary() -> Path:
    if not os.access(STRIPE_MOCK, os.X_OK):
        print(f"\nstripe-mock: not in {STRIPE_MOCK.parent}; running deploy/install-deps.sh stripe-mock")
        subprocess.run(["bash", str(REPO_ROOT / "deploy" / "install-deps.sh"), "stripe-mock"], check=True)
    assert os.access(STRIPE_MOCK, os.X_OK), (
        f"deploy/install-deps.sh stripe-mock did not install {STRIPE_MOCK}"
    )
    return STRIPE_MOCK


def _drain(stream: Any, lines: queue.Queue[str], kept: list[str]) -> None:
    """Read stripe-mock's output to the end, so a full pipe never blocks it (it logs each request)."""
    for line in stream:
        if len(kept) >= LOG_LINES_KEPT:
            kept.pop(0)
        kept.append(line)
        lines.put(line)


def _wait_until_answering(url: str, deadline: float) -> None:
    request = urllib.request.Request(
        f"{url}/v1/payment_intents/pi_ready", headers={"Authorization": f"Bearer {SECRET_KEY}"}
    )
    while True:
        try:
            with urllib.request.urlopen(request, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"stripe-mock at {url} did not answer within {START_TIMEOUT_S}s")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def stripe_mock_url(stripe_mock_binary: Path) -> Iterator[str]:
    # Port 0: the system picks free ports, so parallel sessions never collide.
    proc = subprocess.Popen(
        [str(stripe_mock_binary), "-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    kept: list[str] = []
    threading.Thread(target=_drain, args=(proc.stdout, lines, kept), daemon=True).start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        port = None
        while port is None:
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0 or proc.poll() is not None:
                raise AssertionError(f"stripe-mock did not start; its output:\n{''.join(kept)}")
            try:
                match = _LISTENING.search(lines.get(timeout=min(remaining_s, 0.5)))
            except queue.Empty:
                continue
            port = int(match.group(1)) if match else None
        url = f"http://127.0.0.1:{port}"
        _wait_until_answering(url, deadline)
        yield url
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=STOP_TIMEOUT_S)


def _run(url: str, scenario: Callable[[CardConnector], Awaitable[T]], secret_key: str = SECRET_KEY) -> T:
    async def main() -> T:
        connector = CardConnector(url, secret_key, "whsec_unused", default_payment_method="pm_card_visa")
        try:
            return await scenario(connector)
        finally:
            await connector.aclose()

    return asyncio.run(main())


def _charge(amount: Money = USD_19_99) -> ChargeCommand:
    return ChargeCommand(new_id(IdKind.PAYMENT), new_id(IdKind.ORDER), amount, "card", "tea", "http://gw/wh")


def _refund(payment_id: str) -> RefundCommand:
    amount, paid = Money(500, "USD"), Money(1999, "USD")
    return RefundCommand(new_id(IdKind.REFUND), payment_id, "ord_1", amount, paid, "customer asked", "")


def _all_answered_200(trail: Trail) -> bool:
    return bool(trail.exchanges) and all(e.response_status == 200 for e in trail.exchanges)


# -- the six PaymentIntent/refund operations ----------------------------------------------


def test_create_then_confirm_are_accepted_and_parsed(stripe_mock_url: str) -> None:
    command = _charge(Money(500, "JPY"))

    async def scenario(connector: CardConnector) -> tuple[Intent | Any, Intent | Any, Trail]:
        trail = Trail("charge")
        created = await connector.create_intent(command, trail, confirm=False)
        assert isinstance(created, Intent)
        confirmed = await connector.confirm_intent(created.id, command.payment_id, "pm_card_visa", trail)
        return created, confirmed, trail

    created, confirmed, trail = _run(stripe_mock_url, scenario)
    assert _all_answered_200(trail)
    assert created.id.startswith("pi_") and created.status in transformers.INTENT_STATUSES
    # stripe-mock reflects the amount and currency it was sent: zero-decimal yen, lowercase.
    assert created.amount == Money(500, "JPY")
    assert isinstance(confirmed, Intent) and confirmed.id.startswith("pi_")
    assert "metadata%5Bpayment_id%5D=" + command.payment_id in trail.exchanges[0].request_body
    assert "confirm=true" not in trail.exchanges[0].request_body


def test_capture_with_an_amount_is_accepted_and_parsed(stripe_mock_url: str) -> None:
    async def scenario(connector: CardConnector) -> tuple[Intent | Any, Trail]:
        trail = Trail("capture")
        return await connector.capture_intent("pi_123", "pay_1", trail, Money(1000, "USD")), trail

    captured, trail = _run(stripe_mock_url, scenario)
    assert _all_answered_200(trail) and "amount_to_capture=1000" in trail.exchanges[0].request_body
    assert isinstance(captured, Intent) and captured.id == "pi_123"


def test_cancel_is_accepted_and_parsed(stripe_mock_url: str) -> None:
    async def scenario(connector: CardConnector) -> tuple[Intent | Any, Trail]:
        trail = Trail("close")
        return await connector.cancel_intent("pi_123", "pay_1", trail), trail

    canceled, trail = _run(stripe_mock_url, scenario)
    assert _all_answered_200(trail) and "cancellation_reason=abandoned" in trail.exchanges[0].request_body
    assert isinstance(canceled, Intent) and canceled.id == "pi_123"


def test_refund_is_accepted_and_parsed(stripe_mock_url: str) -> None:
    command = _refund("pay_1")

    async def scenario(connector: CardConnector) -> tuple[CardRefund, Trail]:
        trail = Trail("refund")
        return await connector.create_refund(command, "pi_123", trail), trail

    refund, trail = _run(stripe_mock_url, scenario)
    assert _all_answered_200(trail)
    assert refund.id.startswith("re_") and refund.amount == command.amount
    assert refund.payment_intent == "pi_123"
    assert transformers.refund_reply(refund).state in set(RefundState)


def test_retrieve_search_and_refund_listing_are_accepted_and_parsed(stripe_mock_url: str) -> None:
    async def scenario(connector: CardConnector) -> tuple[Any, ...]:
        trail = Trail("query")
        intent = await connector.retrieve_intent("pi_123", "pay_1", trail)
        # The mock's fixtures carry no metadata of ours: search finds nothing that is ours.
        searched = await connector.search_intent("pay_1", trail)
        refunds = await connector.list_refunds("pi_123", trail)
        refund = await connector.retrieve_refund("re_123", "rfd_1", trail)
        return intent, searched, refunds, refund, trail

    intent, searched, refunds, refund, trail = _run(stripe_mock_url, scenario)
    assert _all_answered_200(trail) and len(trail.exchanges) == 4
    assert isinstance(intent, Intent) and intent.id == "pi_123"
    assert searched is None
    assert "query=metadata%5B%27payment_id%27%5D%3A%27pay_1%27" in trail.exchanges[1].request_body
    assert all(isinstance(r, CardRefund) for r in refunds)
    assert isinstance(refund, CardRefund) and refund.id == "re_123"


# -- the ChannelConnector operations on top ---------------------------------------------


def test_charge_and_query_of_the_charged_intent_parse_the_answers(stripe_mock_url: str) -> None:
    command = _charge()

    async def scenario(connector: CardConnector) -> tuple[Any, Any, QueryReply]:
        reply, raw = await connector.charge(command)
        queried, _ = await connector.query(command.payment_id)  # by id: this process charged it
        return reply, raw, queried

    reply, raw, queried = _run(stripe_mock_url, scenario)
    assert raw.response_status == 200
    assert reply.channel_trade_no.startswith("pi_") and reply.state in set(ChargeState)
    assert queried.channel_trade_no == reply.channel_trade_no and queried.amount is not None


# -- refusals -------------------------------------------------------------------------


def test_a_request_missing_a_required_parameter_is_answered_400_and_invalid(
    stripe_mock_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_form = transformers.create_intent_form

    def without_amount(*args: Any, **kwargs: Any) -> transformers.Form:
        return [(k, v) for k, v in make_form(*args, **kwargs) if k != "amount"]

    monkeypatch.setattr(transformers, "create_intent_form", without_amount)
    with pytest.raises(ChannelRefused) as refused:
        _run(stripe_mock_url, lambda c: c.charge(_charge()))
    assert refused.value.kind is ChannelErrorKind.INVALID_REQUEST
    assert refused.value.channel_code == "invalid_request_error"
    assert refused.value.raw is not None and refused.value.raw.response_status == 400
    assert "amount" in refused.value.raw.response_body


def test_a_request_with_an_unknown_parameter_is_answered_400_and_invalid(
    stripe_mock_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_form = transformers.refund_form

    def with_a_stray(*args: Any, **kwargs: Any) -> transformers.Form:
        return [*make_form(*args, **kwargs), ("refund_everything_twice", "true")]

    monkeypatch.setattr(transformers, "refund_form", with_a_stray)

    async def scenario(connector: CardConnector) -> CardRefund:
        return await connector.create_refund(_refund("pay_1"), "pi_123", Trail("refund"))

    with pytest.raises(ChannelRefused) as refused:
        _run(stripe_mock_url, scenario)
    assert refused.value.kind is ChannelErrorKind.INVALID_REQUEST
    assert refused.value.raw is not None and refused.value.raw.response_status == 400


def test_a_key_that_is_not_a_secret_key_is_answered_401_and_an_authentication_refusal(
    stripe_mock_url: str,
) -> None:
    with pytest.raises(ChannelRefused) as refused:
        _run(stripe_mock_url, lambda c: c.charge(_charge()), secret_key="not_a_key")
    assert refused.value.kind is ChannelErrorKind.AUTHENTICATION
    assert refused.value.raw is not None and refused.value.raw.response_status == 401
