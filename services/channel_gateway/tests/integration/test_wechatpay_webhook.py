"""WeChat Pay callbacks at the gateway's webhook, with PostgreSQL and Kafka: a tampered, stale,
foreign or malformed callback is stored REJECTED with its reason and changes nothing; a genuine
one (built and signed as the vendor SDK reads them) is published and acknowledged."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from channel_gateway.adapters.connectors.wechatpay import build
from channel_gateway.adapters.notification_sink import PAYMENT_NOTIFICATION_EVENT, REFUND_NOTIFICATION_EVENT
from channel_gateway.domain.channel import ChargeState, RefundState
from channel_gateway.entrypoints.webhook import WebhookServer
from channel_gateway.service_layer.services import Gateway
from paykit.ids import IdKind, new_id
from paykit.money import Money

from services.channel_gateway.tests.integration.support import Stack, charge_command, refund_command, unique
from services.channel_gateway.tests.unit.wechatpay.support import (
    Callback,
    FakeWechatPay,
    callback,
    config,
    keys,
    refund_resource,
    transaction_resource,
)

CHANNEL = "wechatpay-it"
FAIL = '{"code": "FAIL", "message": "notification rejected"}'


@dataclass
class Wechat:
    stack: Stack
    gateway: Gateway
    server: FakeWechatPay
    webhook: WebhookServer

    def post(self, note: Callback) -> tuple[int, str]:
        url = f"http://127.0.0.1:{self.webhook.bound_port}/webhooks/{CHANNEL}"
        headers = {**note.headers, "Content-Type": "application/json"}
        request = urllib.request.Request(url, data=note.body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def stored(self, notify_id: str) -> Any:
        [row] = self.stack.rows(
            "select verdict, reject_reason, published_event_id from notifications "
            "where channel=:c and position(:n in convert_from(body, 'UTF8')) > 0",
            c=CHANNEL,
            n=notify_id,
        )
        return row


@pytest.fixture
def wechat(stack: Stack) -> Iterator[Wechat]:
    """A WeChat Pay channel on the session's database and Kafka, at a fake WeChat Pay."""
    server = FakeWechatPay()
    base_url = stack.loop.run(server.start())
    connector = build(CHANNEL, config(base_url))
    gateway = Gateway(
        stack.gateway.sessions, {CHANNEL: connector}, stack.gateway.sink, stack.gateway.notify_url_for
    )
    webhook = WebhookServer(gateway, "127.0.0.1", 0)
    stack.loop.run(webhook.start())
    try:
        yield Wechat(stack, gateway, server, webhook)
    finally:
        stack.loop.run(webhook.stop())
        stack.loop.run(connector.aclose())
        stack.loop.run(server.stop())


def test_bad_payment_callbacks_are_stored_rejected_and_only_the_genuine_one_is_published(
    wechat: Wechat,
) -> None:
    stack = wechat.stack
    charge = charge_command(stack, CHANNEL, Money(1999, "CNY"), subject="咖啡")
    assert stack.loop.run(wechat.gateway.charge(charge, CHANNEL)).state is ChargeState.PENDING
    paid = transaction_resource(out_trade_no=charge.payment_id)

    def note(resource: dict[str, Any] = paid, **options: Any) -> tuple[str, Callback]:
        notify_id = unique("EV-wx")
        return notify_id, callback("TRANSACTION.SUCCESS", resource, notify_id=notify_id, **options)

    bad = {
        "signature does not verify": note(signer=keys().rogue),
        "is not our platform certificate's": note(serial="PUB_KEY_ID_0119000001092024112500000000000002"),
        "stale": note(timestamp=1_700_000_000),
        "tampered": note(flip_ciphertext=True),
        "ciphertext or associated_data": note(sent_associated_data="forged"),
        "amount in wrong format": note(
            transaction_resource(out_trade_no=charge.payment_id, amount={"total": 19.99})
        ),
    }
    for reason, (notify_id, callback_) in bad.items():
        assert wechat.post(callback_) == (400, FAIL), reason
        row = wechat.stored(notify_id)
        assert row.verdict == "REJECTED" and reason in row.reject_reason and row.published_event_id is None
    [charge_row] = stack.rows("select state from charges where payment_id=:p", p=charge.payment_id)
    assert charge_row.state == ChargeState.PENDING.value

    genuine_id, genuine = note()
    assert wechat.post(genuine) == (200, "")
    assert wechat.stored(genuine_id).published_event_id is not None
    published = stack.events(charge.order_id, PAYMENT_NOTIFICATION_EVENT)
    assert len(published) == 1


def test_refund_callbacks_move_the_refund_only_when_genuine_and_final(wechat: Wechat) -> None:
    stack = wechat.stack
    charge = charge_command(stack, CHANNEL, Money(1999, "CNY"))
    stack.loop.run(wechat.gateway.charge(charge, CHANNEL))
    wechat.server.pay(charge.payment_id)
    command = refund_command(stack, charge, CHANNEL, Money(500, "CNY"), refund_id=new_id(IdKind.REFUND))
    assert stack.loop.run(wechat.gateway.refund(command, CHANNEL)).state is RefundState.PROCESSING
    ours = {"out_trade_no": charge.payment_id, "out_refund_no": command.refund_id}

    def note(event: str, **resource: Any) -> tuple[str, Callback]:
        notify_id = unique("EV-wxr")
        body = refund_resource(**ours, **resource)
        options = {"original_type": "refund", "associated_data": "refund", "notify_id": notify_id}
        return notify_id, callback(event, body, **options)

    def refund_state() -> str:
        [row] = stack.rows("select state from refunds where refund_id=:r", r=command.refund_id)
        return str(row.state)

    # Genuine but not final: taken (WeChat Pay stops sending it), stored, acted on by nothing.
    abnormal_id, abnormal = note("REFUND.ABNORMAL", refund_status="ABNORMAL", success_time=None)
    assert wechat.post(abnormal) == (200, "")
    stored = wechat.stored(abnormal_id)
    assert stored.verdict == "ACKNOWLEDGED_ONLY" and "stays PROCESSING" in stored.reject_reason
    tampered_id, tampered = note("REFUND.SUCCESS")
    tampered = Callback(
        tampered.headers, tampered.body.replace(b'"refund"', b'"REFUND"', 1), tampered.plaintext
    )
    assert wechat.post(tampered) == (400, FAIL)
    assert "signature does not verify" in wechat.stored(tampered_id).reject_reason
    assert refund_state() == RefundState.PROCESSING.value

    genuine_id, genuine = note("REFUND.SUCCESS")
    assert wechat.post(genuine) == (200, "")
    assert wechat.stored(genuine_id).published_event_id is not None
    assert len(stack.events(charge.order_id, REFUND_NOTIFICATION_EVENT)) == 1
    assert refund_state() == RefundState.SUCCEEDED.value
