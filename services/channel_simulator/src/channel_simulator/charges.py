"""Charge, query and close: POST /v1/charges, GET /v1/charges/{no}, POST /v1/charges/{no}/close."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass

from aiohttp import web
from paykit.money import Money

from channel_simulator import fields
from channel_simulator.accounts import MerchantAccount, Trade, TradeStatus
from channel_simulator.directives import DirectiveError, Directives, parse_directives
from channel_simulator.lifecycle import payer
from channel_simulator.limits import MAX_ID_CHARS, MAX_TEXT_CHARS, MAX_TRADES
from channel_simulator.views import charge_view
from channel_simulator.wire import ApiError, invalid, read_signed, reply, sandbox_of


@dataclass(frozen=True)
class ChargeRequest:
    out_trade_no: str
    amount: Money
    notify_url: str
    subject: str
    directives: Directives


class Fate(enum.Enum):
    """What becomes of one new charge request, decided once when it arrives."""

    LOST = "lost"  # no trade, no answer
    DECLINED = "declined"  # answered DECLINED, no trade
    ANSWER_LOST = "answer_lost"  # trade created (and paid), answer never sent
    ANSWERED = "answered"


def _parse(merchant: MerchantAccount, body: bytes) -> ChargeRequest:
    try:
        data = fields.json_object(body)
        out_trade_no = fields.text(data, "out_trade_no", max_chars=MAX_ID_CHARS)
        amount = fields.money(data)
        notify_url = fields.url(data, "notify_url")
        subject = fields.text(data, "subject", max_chars=MAX_TEXT_CHARS, required=False)
    except fields.FieldError as exc:
        raise invalid(merchant, "INVALID_REQUEST", str(exc)) from exc
    try:
        directives = parse_directives(subject)
    except DirectiveError as exc:
        raise invalid(merchant, "INVALID_DIRECTIVE", str(exc)) from exc
    return ChargeRequest(out_trade_no, amount, notify_url, subject, directives)


def _fate(merchant: MerchantAccount, directives: Directives) -> Fate:
    """Directives first; otherwise the merchant's rates, drawn in this fixed order."""
    behaviour = merchant.behaviour
    if directives.timeout or merchant.chance(behaviour.timeout_rate):
        return Fate.LOST
    if directives.decline or merchant.chance(behaviour.decline_rate):
        return Fate.DECLINED
    if directives.success_after_timeout or merchant.chance(behaviour.success_after_timeout_rate):
        return Fate.ANSWER_LOST
    return Fate.ANSWERED


def _answer_to_repeat(merchant: MerchantAccount, existing: Trade, charge: ChargeRequest) -> Trade:
    """Channels answer a repeated out_trade_no with the trade they already have, if it matches."""
    if existing.status is TradeStatus.CLOSED:
        raise invalid(merchant, "TRADE_CLOSED", f"trade {existing.out_trade_no} is closed", 409)
    if existing.amount != charge.amount:
        raise invalid(merchant, "OUT_TRADE_NO_USED", "out_trade_no was used with another amount", 409)
    return existing


async def _lose_answer(request: web.Request, merchant: MerchantAccount) -> web.Response:
    await sandbox_of(request).hang(merchant.behaviour.hang_s, request)
    # The connection is gone; this answer is never delivered.
    return web.Response(status=504)


_DECLINED = {"result": "DECLINED", "code": "RISK_DECLINED", "message": "declined by sandbox"}


async def _open_trade(
    request: web.Request, merchant: MerchantAccount, charge: ChargeRequest, answer_lost: bool
) -> web.Response:
    sandbox = sandbox_of(request)
    directives, behaviour = charge.directives, merchant.behaviour
    trade = Trade(
        trade_no=merchant.next_trade_no(),
        out_trade_no=charge.out_trade_no,
        amount=charge.amount,
        notify_url=charge.notify_url,
        subject=charge.subject,
        directives=directives,
    )
    pays = not directives.no_pay and merchant.chance(behaviour.pay_rate)
    reorder = directives.out_of_order or merchant.chance(behaviour.out_of_order_rate)
    if pays and reorder and not answer_lost:
        stale = charge_view(trade)
        merchant.trades[trade.out_trade_no] = trade
        # Paid and notified (and acknowledged) before the charge's own answer leaves.
        await asyncio.wait({sandbox.spawn(payer(sandbox, merchant, trade, 0))})
        return reply(request, merchant, stale)
    if pays:
        delay_ms = behaviour.pay_delay_ms if directives.pay_delay_ms is None else directives.pay_delay_ms
        sandbox.spawn(payer(sandbox, merchant, trade, delay_ms))
    merchant.trades[trade.out_trade_no] = trade
    if answer_lost:
        return await _lose_answer(request, merchant)
    return reply(request, merchant, charge_view(trade))


async def create_charge(request: web.Request) -> web.Response:
    merchant, body = await read_signed(request)
    charge = _parse(merchant, body)
    existing = merchant.trades.get(charge.out_trade_no)
    if existing is not None:
        return reply(request, merchant, charge_view(_answer_to_repeat(merchant, existing, charge)))
    if len(merchant.trades) >= MAX_TRADES:
        raise invalid(merchant, "SANDBOX_FULL", f"{MAX_TRADES} trades stored", 503)
    fate = _fate(merchant, charge.directives)
    if fate is Fate.LOST:
        return await _lose_answer(request, merchant)
    if fate is Fate.DECLINED:
        return reply(request, merchant, _DECLINED)
    return await _open_trade(request, merchant, charge, answer_lost=fate is Fate.ANSWER_LOST)


async def query_charge(request: web.Request) -> web.Response:
    merchant, _body = await read_signed(request)
    trade = merchant.trades.get(request.match_info["out_trade_no"])
    if trade is None:
        return reply(request, merchant, {"result": "NOT_FOUND"})
    return reply(request, merchant, charge_view(trade))


async def close_charge(request: web.Request) -> web.Response:
    merchant, _body = await read_signed(request)
    out_trade_no = request.match_info["out_trade_no"]
    trade = merchant.trades.get(out_trade_no)
    if trade is None:
        if len(merchant.trades) >= MAX_TRADES:
            raise invalid(merchant, "SANDBOX_FULL", f"{MAX_TRADES} trades stored", 503)
        # A tombstone: a charge with this number arriving later (a request that overtook
        # its own close on the network) is refused and can never take money.
        merchant.trades[out_trade_no] = Trade.tombstone(merchant.next_trade_no(), out_trade_no)
        return reply(request, merchant, {"result": "CLOSED"})
    if not trade.close():
        raise ApiError(
            409,
            {"result": "INVALID", "code": "TRADE_ALREADY_PAID", "message": f"trade {out_trade_no} is paid"},
            merchant,
        )
    return reply(request, merchant, {"result": "CLOSED"})
