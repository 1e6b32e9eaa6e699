"""Registering and changing endpoints: URL policy, event types, secrets."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from paykit.errors import InvalidArgument, NotFound
from paykit.ids import IdKind, new_id

from notification.domain.endpoint import Endpoint, checked_event_types, new_secret, rotated, rotation_overlap
from notification.domain.url_policy import IpAddress, check_addresses, literal_address, parsed_url
from notification.service_layer.unit_of_work import UowFactory, now_utc

log = logging.getLogger(__name__)

Resolver = Callable[[str], list[IpAddress]]


@dataclass(frozen=True)
class UrlPolicy:
    resolve: Resolver
    allow_insecure: bool

    def check(self, url: str) -> str:
        parts = parsed_url(url, self.allow_insecure)
        host = parts.hostname or ""
        literal = literal_address(host)
        addresses = [literal] if literal is not None else self.resolve(host)
        check_addresses(host, addresses, self.allow_insecure)
        return url


def register(
    uow_factory: UowFactory, policy: UrlPolicy, merchant_id: str, url: str, event_types: Sequence[str]
) -> Endpoint:
    if not merchant_id:
        raise InvalidArgument("merchant_id", "is required")
    types = checked_event_types(tuple(event_types))
    checked = policy.check(url)
    now = now_utc()
    endpoint = Endpoint(
        endpoint_id=new_id(IdKind.NOTIFICATION),
        merchant_id=merchant_id,
        url=checked,
        event_types=types,
        enabled=True,
        secret=new_secret(),
        previous_secret=None,
        previous_secret_expires_at=None,
        created_at=now,
    )
    with uow_factory() as uow:
        uow.endpoints.add(endpoint, now)
        uow.commit()
    log.info("endpoint registered", extra={"endpoint_id": endpoint.endpoint_id, "merchant_id": merchant_id})
    return endpoint


def update(
    uow_factory: UowFactory,
    policy: UrlPolicy,
    endpoint_id: str,
    url: str,
    event_types: Sequence[str],
    enabled: bool,
) -> Endpoint:
    """Replaces url, event types and enabled together (proto3 cannot tell unset from empty)."""
    if not endpoint_id:
        raise InvalidArgument("endpoint_id", "is required")
    types = checked_event_types(tuple(event_types))
    checked = policy.check(url)
    with uow_factory() as uow:
        found = uow.endpoints.get(endpoint_id, for_update=True)
        if found is None:
            raise NotFound(f"endpoint {endpoint_id} not found")
        changed = replace(found, url=checked, event_types=types, enabled=enabled)
        uow.endpoints.save(changed, now_utc())
        uow.commit()
    return changed


def rotate_secret(uow_factory: UowFactory, endpoint_id: str, overlap_s: int) -> Endpoint:
    if not endpoint_id:
        raise InvalidArgument("endpoint_id", "is required")
    overlap = rotation_overlap(overlap_s)
    now = now_utc()
    with uow_factory() as uow:
        found = uow.endpoints.get(endpoint_id, for_update=True)
        if found is None:
            raise NotFound(f"endpoint {endpoint_id} not found")
        changed = rotated(found, now, overlap)
        uow.endpoints.save(changed, now)
        uow.commit()
    log.info("endpoint secret rotated", extra={"endpoint_id": endpoint_id})
    return changed
