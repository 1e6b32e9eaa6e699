"""The channel's asynchronous side: the payer paying, refunds finishing, and their notifications.

Notifications go out in the protocol that created the trade (Trade.protocol).
"""

from __future__ import annotations

import asyncio

from channel_simulator.accounts import MerchantAccount, Refund, Trade
from channel_simulator.notifier import Notifier, plan_for
from channel_simulator.protocols.base import PaymentNotice, RefundNotice
from channel_simulator.sandbox import Sandbox


def _notifier(sandbox: Sandbox, trade: Trade) -> Notifier:
    return Notifier(sandbox.session(), sandbox.protocol(trade.protocol))


async def notify_payment(sandbox: Sandbox, merchant: MerchantAccount, trade: Trade) -> None:
    plan = plan_for(trade.directives, merchant.behaviour)
    await _notifier(sandbox, trade).send(PaymentNotice(merchant, trade), plan, trade.deliveries)


async def payer(sandbox: Sandbox, merchant: MerchantAccount, trade: Trade, delay_ms: int) -> None:
    """The simulated payer scans the QR code after `delay_ms` and pays."""
    await asyncio.sleep(delay_ms / 1000)
    # The trade may have been closed while the payer hesitated: it can no longer be paid.
    if not trade.pay():
        return
    await notify_payment(sandbox, merchant, trade)


def settle_refund(merchant: MerchantAccount, refund: Refund) -> bool:
    """The channel settles the refund or declines it (refund_decline_rate); False if already done."""
    declined = merchant.chance(merchant.behaviour.refund_decline_rate)
    return refund.finish(succeeded=not declined)


async def notify_refund(sandbox: Sandbox, merchant: MerchantAccount, trade: Trade, refund: Refund) -> None:
    # The trade's notification directives govern its refunds' notifications too.
    plan = plan_for(trade.directives, merchant.behaviour)
    await _notifier(sandbox, trade).send(RefundNotice(merchant, trade, refund), plan, refund.deliveries)


async def finish_refund(
    sandbox: Sandbox, merchant: MerchantAccount, trade: Trade, refund: Refund, delay_ms: int
) -> None:
    """After `delay_ms` the channel settles the refund (or declines it) and tells the merchant."""
    await asyncio.sleep(delay_ms / 1000)
    if not settle_refund(merchant, refund):
        return
    await notify_refund(sandbox, merchant, trade, refund)
