"""The protocol plugin interface: one channel's wire format on top of the sandbox's neutral core.

The sandbox plays several channels at once: its own "simpay" and the
protocols of real channels. A protocol is one module (or package) under
channel_simulator/protocols/ with a Protocol subclass, registered by name in
app.PROTOCOLS. What it must do:

- **Routes** (`routes()`): its aiohttp handlers, every path under its own
  `prefix` ("/v1" for simpay; "/alipay", "/wechatpay/v3", "/card/v1" ...).
  A handler verifies the caller the protocol's way (signature, key), maps
  the protocol's merchant identifier to an account (`Sandbox.merchant_for`),
  refuses every call of an account whose `behaviour.unavailable` is set
  (the channel's outage) the protocol's way, parses its wire format into the
  neutral requests of operations.py, calls the operation with its own name,
  and formats the outcome, or the operations.Refused it raises, in its own
  wire format. A LOST or ANSWER_LOST outcome is answered with
  `edge.lose_answer(request, merchant)`: the connection hangs and drops.
- **Merchant identifiers**: at construction it registers the identifiers it
  accepts for the sandbox's accounts (`Sandbox.register_merchant`).
- **Notifications** of the trades and refunds it created: the notifier asks
  `destination()` where to post (default: the notify_url given with the
  charge or refund), `format_notification()` for the body (once per
  notification: every copy and retry sends the same bytes),
  `sign_notification()` for the headers of each attempt, and
  `is_acknowledged()` whether the merchant's answer stops the retries.
- **Credentials** (`credentials()`): what a merchant needs to talk to it,
  generated at start-up (keys, certificates) or given by the operator,
  served as JSON by GET /v1/admin/sandbox-credentials. They exist for local
  use only: a sandbox key never signs anything outside the sandbox.
- **Statements** (`statement()`): the day's statement file of an account,
  in the protocol's own format; not offered (None) unless a protocol does.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, ClassVar

from aiohttp import web

from channel_simulator.accounts import MerchantAccount, Refund, Trade
from channel_simulator.limits import MAX_PROTOCOLS
from channel_simulator.sandbox import Sandbox

# Paths no protocol may claim: the operator's control panel.
ADMIN_PREFIX = "/v1/admin"


@dataclass(frozen=True)
class PaymentNotice:
    """The trade was paid: tell the merchant."""

    merchant: MerchantAccount
    trade: Trade


@dataclass(frozen=True)
class RefundNotice:
    """The refund reached SUCCESS or FAILED: tell the merchant."""

    merchant: MerchantAccount
    trade: Trade
    refund: Refund


Notice = PaymentNotice | RefundNotice


class Protocol(abc.ABC):
    """One channel protocol the sandbox speaks. Subclasses set `name` and `prefix`."""

    # The registry name: a Trade's `protocol`, a key of /v1/admin/sandbox-credentials.
    name: ClassVar[str]
    # Every route of the protocol starts with this path ("/alipay" covers "/alipay/gateway.do").
    prefix: ClassVar[str]

    @abc.abstractmethod
    def routes(self) -> Sequence[web.RouteDef]:
        """The protocol's HTTP endpoints, each under `prefix`; read at build, so without side effects."""

    @abc.abstractmethod
    def credentials(self, merchants: Sequence[MerchantAccount]) -> dict[str, Any]:
        """The local sandbox credentials for `merchants` (JSON-ready): ids, keys, certificates."""

    @abc.abstractmethod
    def format_notification(self, notice: Notice) -> bytes:
        """The notification's body, built once and sent unchanged on every copy and retry."""

    @abc.abstractmethod
    def sign_notification(self, notice: Notice, url: str, body: bytes, now_s: float) -> dict[str, str]:
        """The headers of one delivery attempt of `body` to `url` at `now_s` (Unix seconds)."""

    @abc.abstractmethod
    def is_acknowledged(self, status: int, body: bytes) -> bool:
        """Whether the merchant's answer (HTTP status and body) acknowledges the notification."""

    def destination(self, notice: Notice) -> str | None:
        """Where the notification goes; None: nowhere (the protocol does not notify this one)."""
        if isinstance(notice, RefundNotice):
            return notice.refund.notify_url or None
        return notice.trade.notify_url or None

    def statement(self, merchant: MerchantAccount, day: date) -> bytes | None:
        """The account's statement file for `day` in this protocol's format; None: not offered."""
        return None


# Builds a protocol for a sandbox whose accounts exist; it registers its merchant ids there.
ProtocolFactory = Callable[[Sandbox], Protocol]


class ProtocolRegistry:
    """The protocols a sandbox can enable, by name. Copy it to add a protocol in a test."""

    def __init__(self) -> None:
        self._factories: dict[str, ProtocolFactory] = {}

    def register(self, name: str, factory: ProtocolFactory) -> None:
        if name in self._factories:
            raise ValueError(f"protocol {name!r} is registered already")
        if len(self._factories) >= MAX_PROTOCOLS:
            raise ValueError(f"{MAX_PROTOCOLS} protocols are registered already")
        self._factories[name] = factory

    def names(self) -> tuple[str, ...]:
        return tuple(self._factories)

    def copy(self) -> ProtocolRegistry:
        twin = ProtocolRegistry()
        twin._factories = dict(self._factories)
        return twin

    def build(self, names: Iterable[str] | None, sandbox: Sandbox) -> dict[str, Protocol]:
        """The protocols `names` (all registered ones when None), built for `sandbox` and checked."""
        wanted = list(self._factories if names is None else names)
        unknown = sorted(set(wanted) - set(self._factories))
        if unknown:
            raise ValueError(f"unknown protocols {unknown}; registered: {sorted(self._factories)}")
        if not wanted or len(set(wanted)) != len(wanted):
            raise ValueError(f"enable at least one protocol, each once; got {wanted}")
        built: dict[str, Protocol] = {}
        for name in wanted:
            protocol = self._factories[name](sandbox)
            if protocol.name != name:
                raise ValueError(f"protocol registered as {name!r} calls itself {protocol.name!r}")
            built[name] = protocol
        _check_prefixes(built.values())
        return built


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def _check_prefixes(protocols: Iterable[Protocol]) -> None:
    """Each protocol owns its prefix: no route outside it, no prefix inside another or the admin's."""
    seen: list[Protocol] = []
    for protocol in protocols:
        prefix = protocol.prefix
        if not prefix.startswith("/") or _under(prefix, ADMIN_PREFIX):
            raise ValueError(f"protocol {protocol.name}: bad prefix {prefix!r}")
        for other in seen:
            if _under(prefix, other.prefix) or _under(other.prefix, prefix):
                raise ValueError(f"protocols {other.name} and {protocol.name} share the prefix {prefix!r}")
        for route in protocol.routes():
            if not _under(route.path, prefix) or _under(route.path, ADMIN_PREFIX):
                raise ValueError(f"protocol {protocol.name}: route {route.path} is outside {prefix}")
        seen.append(protocol)
