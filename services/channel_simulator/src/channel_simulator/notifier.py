"""Posting notifications to the merchant, retried until acknowledged, in the trade's own protocol.

The protocol that created the trade or refund decides where the notification
goes, formats its body (once: every copy and retry sends the same bytes),
signs each attempt, and judges the merchant's answer (simpay: HTTP 200 with
the exact body "success"). Anything not acknowledged is retried with a
doubling back-off, up to NOTIFY_MAX_ATTEMPTS, as real channels do.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from aiohttp import ClientError, ClientSession

from channel_simulator.accounts import Deliveries
from channel_simulator.behaviour import Behaviour
from channel_simulator.directives import Directives
from channel_simulator.limits import NOTIFY_FIRST_RETRY_S, NOTIFY_MAX_ATTEMPTS
from channel_simulator.protocols.base import Notice, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NotifyPlan:
    drop: bool
    delay_ms: int
    copies: int


def plan_for(directives: Directives, behaviour: Behaviour) -> NotifyPlan:
    """The trade's own directives win; the merchant's current behaviour fills the rest."""
    delay_ms, copies = directives.delay_notify_ms, directives.duplicate_notify
    return NotifyPlan(
        drop=directives.drop_notify or behaviour.drop_notifications,
        delay_ms=behaviour.notify_delay_ms if delay_ms is None else delay_ms,
        copies=behaviour.duplicate_notifications if copies is None else copies,
    )


@dataclass(frozen=True)
class Notifier:
    session: ClientSession
    protocol: Protocol

    async def send(self, notice: Notice, plan: NotifyPlan, deliveries: Deliveries) -> None:
        if plan.drop:
            return
        url = self.protocol.destination(notice)
        if url is None:
            return
        body = self.protocol.format_notification(notice)
        if plan.delay_ms:
            await asyncio.sleep(plan.delay_ms / 1000)
        for _copy in range(max(1, plan.copies)):
            await self._deliver(notice, url, body, deliveries)

    async def _deliver(self, notice: Notice, url: str, body: bytes, deliveries: Deliveries) -> None:
        delay_s = NOTIFY_FIRST_RETRY_S
        for attempt in range(NOTIFY_MAX_ATTEMPTS):
            deliveries.sent += 1
            try:
                headers = self.protocol.sign_notification(notice, url, body, time.time())
                async with self.session.post(url, data=body, headers=headers) as resp:
                    if self.protocol.is_acknowledged(resp.status, await resp.read()):
                        deliveries.acked += 1
                        return
                    log.info("notification refused", extra={"url": url, "status": resp.status})
            except (ClientError, TimeoutError, OSError) as exc:
                log.info("notification not delivered", extra={"url": url, "error": str(exc)})
            if attempt + 1 < NOTIFY_MAX_ATTEMPTS:
                await asyncio.sleep(delay_s)
                delay_s *= 2
