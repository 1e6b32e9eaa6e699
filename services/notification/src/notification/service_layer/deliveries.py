"""Reading deliveries and redelivering dead ones."""

from __future__ import annotations

from dataclasses import dataclass

from paykit.errors import InvalidArgument, NotFound

from notification.adapters.repository import StoredAttempt
from notification.domain.delivery import Delivery, DeliveryStatus, redelivered
from notification.service_layer.unit_of_work import UowFactory, now_utc

DEFAULT_PAGE = 50
MAX_PAGE = 500
# One Redeliver call moves at most this many DEAD deliveries of an endpoint; call again for more.
MAX_REDELIVER = 1000


@dataclass(frozen=True)
class DeliveryView:
    delivery: Delivery
    attempts: list[StoredAttempt]


def get(uow_factory: UowFactory, delivery_id: str) -> DeliveryView:
    if not delivery_id:
        raise InvalidArgument("delivery_id", "is required")
    with uow_factory() as uow:
        found = uow.deliveries.get(delivery_id)
        if found is None:
            raise NotFound(f"delivery {delivery_id} not found")
        return DeliveryView(found, uow.deliveries.attempts_of(delivery_id))


def find(
    uow_factory: UowFactory, order_id: str, endpoint_id: str, status: DeliveryStatus | None, page_size: int
) -> list[Delivery]:
    if not order_id and not endpoint_id:
        raise InvalidArgument("order_id", "order_id or endpoint_id is required")
    if not 0 <= page_size <= MAX_PAGE:
        raise InvalidArgument("page_size", f"must be 0..{MAX_PAGE}")
    with uow_factory() as uow:
        return uow.deliveries.find(order_id, endpoint_id, status, page_size or DEFAULT_PAGE)


def redeliver(uow_factory: UowFactory, delivery_id: str, endpoint_id: str) -> list[str]:
    """One DEAD delivery, or every DEAD delivery of an endpoint, back to PENDING now."""
    if bool(delivery_id) == bool(endpoint_id):
        raise InvalidArgument("delivery_id", "exactly one of delivery_id and endpoint_id is required")
    now = now_utc()
    with uow_factory() as uow:
        if delivery_id:
            found = uow.deliveries.get(delivery_id, for_update=True)
            if found is None:
                raise NotFound(f"delivery {delivery_id} not found")
            targets = [found]
        else:
            if uow.endpoints.get(endpoint_id) is None:
                raise NotFound(f"endpoint {endpoint_id} not found")
            targets = uow.deliveries.dead_of_endpoint(endpoint_id, MAX_REDELIVER)
        moved = [redelivered(d, now) for d in targets]  # refuses anything not DEAD
        for delivery in moved:
            uow.deliveries.save(delivery)
        uow.commit()
    return [d.delivery_id for d in moved]
