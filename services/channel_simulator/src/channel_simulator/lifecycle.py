"""The channel's asynchronous side: the payer paying, refunds finishing, and their notifications."""

from __future__ import annotations

import asyncio

from channel_simulator.accounts import MerchantAccount, Refund, Trade
from channel_simulator.notifier import Notifier, plan_for
from channel_simulator.sandbox import Sandbox
from channel_simulator.views import payment_notification, refund_notification


def _notifier(sandbox: Sandbox, merchant: MerchantAccount) -> Notifier:
    return Notifier(sandbox.session(), merchant.merchant_id, sandbox.key)


async def payer(sandbox: Sandbox, merchant: MerchantAccount, trade: Trade, delay_ms: int) -> None:
    """The simulated payer scans the QR code after `delay_ms` and pays."""
    await asyncio.sleep(delay_ms / 1000)
    # The trade may have been closed while the payer hesitated: it can no longer be paid.
    if not trade.pay():
        return
    plan = plan_for(trade.directives, merchant.behaviour)
    await _notifier(sandbox, merchant).send(
        trade.notify_url, payment_notification(trade), plan, trade.deliveries
    )


async def finish_refund(
    sandbox: Sandbox, merchant: MerchantAccount, trade: Trade, refund: Refund, delay_ms: int
) -> None:
    """After `delay_ms` the channel settles the refund (or declines it) and tells the merchant."""
    await asyncio.sleep(delay_ms / 1000)
    declined = merchant.chance(merchant.behaviour.refund_decline_rate)
    if not refund.finish(succeeded=not declined):
        return
    # The trade's notification directives govern its refunds' notifications too.
    plan = plan_for(trade.directives, merchant.behaviour)
    await _notifier(sandbox, merchant).send(
        refund.notify_url, refund_notification(refund), plan, refund.deliveries
    )
