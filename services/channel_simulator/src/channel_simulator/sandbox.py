"""The running sandbox: its merchant accounts, its protocols, background tasks and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import ClientSession, web

from channel_simulator.accounts import MerchantAccount
from channel_simulator.behaviour import Behaviour
from channel_simulator.limits import MAX_BACKGROUND_TASKS, MAX_MERCHANT_IDS_PER_PROTOCOL

if TYPE_CHECKING:
    from channel_simulator.protocols.base import Protocol


class SandboxBusy(Exception):
    """Too many background tasks alive: the sandbox refuses new work rather than grow."""


@dataclass
class Sandbox:
    # The operator's secret (SIMULATOR_SECRET): simpay's HMAC key. Other protocols make their own keys.
    secret: bytes
    merchants: dict[str, MerchantAccount]
    # The enabled protocols by name, installed by build_app.
    protocols: dict[str, Protocol] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # Set on shutdown: requests that hold their connection ("lost" answers) let go.
    closing: asyncio.Event = field(default_factory=asyncio.Event)
    http: ClientSession | None = None
    # (protocol, the protocol's merchant id) -> account id, and the first such id of each account.
    _accounts: dict[tuple[str, str], str] = field(default_factory=dict)
    _protocol_ids: dict[tuple[str, str], str] = field(default_factory=dict)
    _registered: dict[str, int] = field(default_factory=dict)

    @classmethod
    def create(
        cls, merchant_ids: Iterable[str], secret: bytes, behaviour: Behaviour, seed: int | None = None
    ) -> Sandbox:
        # One seeded stream per merchant: one account's traffic never shifts another's draws.
        seeds = random.Random(seed)
        merchants = {
            merchant_id: MerchantAccount(
                merchant_id,
                number,
                behaviour,
                random.Random(seeds.getrandbits(64) if seed is not None else None),
            )
            for number, merchant_id in enumerate(merchant_ids, start=1)
        }
        if not merchants:
            raise ValueError("the sandbox needs at least one merchant account")
        return cls(secret, merchants)

    # -- protocols and their merchant identifiers ------------------------------------------
    def protocol(self, name: str) -> Protocol:
        found = self.protocols.get(name)
        if found is None:
            raise LookupError(f"protocol {name!r} is not enabled; enabled: {sorted(self.protocols)}")
        return found

    def register_merchant(self, protocol: str, protocol_merchant_id: str, account_id: str) -> None:
        """Let `protocol` reach account `account_id` under its own merchant identifier.

        An Alipay app_id, a WeChat Pay mchid or a card account key names one of the
        sandbox's shared accounts; several identifiers may name the same account, and
        the first one registered is the account's identifier in that protocol.
        """
        if account_id not in self.merchants:
            raise ValueError(f"no merchant account {account_id!r}; known: {sorted(self.merchants)}")
        key = (protocol, protocol_merchant_id)
        if self._accounts.get(key, account_id) != account_id:
            raise ValueError(f"{protocol} merchant id {protocol_merchant_id!r} already names another account")
        if key not in self._accounts:
            if self._registered.get(protocol, 0) >= MAX_MERCHANT_IDS_PER_PROTOCOL:
                raise ValueError(f"{protocol} has {MAX_MERCHANT_IDS_PER_PROTOCOL} merchant ids already")
            self._registered[protocol] = self._registered.get(protocol, 0) + 1
        self._accounts[key] = account_id
        self._protocol_ids.setdefault((protocol, account_id), protocol_merchant_id)

    def merchant_for(self, protocol: str, protocol_merchant_id: str) -> MerchantAccount | None:
        """The account `protocol` names `protocol_merchant_id`, or None."""
        account_id = self._accounts.get((protocol, protocol_merchant_id))
        return None if account_id is None else self.merchants[account_id]

    def protocol_merchant_id(self, protocol: str, account_id: str) -> str | None:
        """The identifier `protocol` uses for account `account_id` (the first registered), or None."""
        return self._protocol_ids.get((protocol, account_id))

    # -- background work and shutdown -------------------------------------------------------
    def session(self) -> ClientSession:
        if self.http is None:
            raise RuntimeError("the sandbox's HTTP client is not started")
        return self.http

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run `work` in the background, tracked so shutdown can cancel it."""
        if len(self.tasks) >= MAX_BACKGROUND_TASKS:
            work.close()
            raise SandboxBusy(f"{MAX_BACKGROUND_TASKS} background tasks already running")
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def hang(self, hang_s: float, request: web.Request) -> None:
        """Hold the connection without answering, then drop it: the answer is lost."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.closing.wait(), hang_s)
        if request.transport is not None:
            request.transport.close()

    async def shutdown(self) -> None:
        self.closing.set()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.http is not None:
            await self.http.close()
