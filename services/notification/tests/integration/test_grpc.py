"""NotificationService over real gRPC (in process, port 0) and PostgreSQL: statuses with
field names for bad input, the idempotent RegisterEndpoint, secrets shown once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc
import pytest
from notification.adapters.resolver import resolve
from notification.bootstrap import idempotency
from notification.entrypoints.grpc_server import SERVICE_NAME, NotificationServicer
from notification.service_layer.endpoints import UrlPolicy
from notification.service_layer.unit_of_work import UowFactory
from notification.settings import NotificationSettings
from paykit.grpckit.testing import in_process_caller, rpc_error, violated_field
from paykit.notification.v1 import notification_pb2 as pb
from paykit.notification.v1 import notification_pb2_grpc
from sqlalchemy import Engine

T = TypeVar("T")
Stub = notification_pb2_grpc.NotificationServiceStub
PUBLIC_URL = "https://93.184.216.34/hooks"


@pytest.fixture
def call(uow_factory: UowFactory, ntf_engine: Engine) -> Callable[[Callable[[Stub], Awaitable[T]]], T]:
    settings = NotificationSettings(database_url="unused", kafka_bootstrap_servers="unused")

    return in_process_caller(  # type: ignore[no-any-return]
        notification_pb2_grpc.add_NotificationServiceServicer_to_server,
        NotificationServicer(uow_factory, UrlPolicy(resolve, allow_insecure=False)),
        SERVICE_NAME,
        notification_pb2_grpc.NotificationServiceStub,
        [idempotency(ntf_engine, settings)],
    )


def register_request(**fields: Any) -> pb.RegisterEndpointRequest:
    request: dict[str, Any] = {"idempotency_key": "k-1", "merchant_id": "m_grpc", "url": PUBLIC_URL}
    request.update(fields)
    return pb.RegisterEndpointRequest(**{k: v for k, v in request.items() if v is not None})


@pytest.mark.parametrize(
    ("fields", "field", "says"),
    [
        ({"idempotency_key": None}, "idempotency_key", ""),
        ({"idempotency_key": "k-m", "merchant_id": None}, "merchant_id", "required"),
        ({"idempotency_key": "k-h", "url": "http://93.184.216.34/hooks"}, "url", "https"),
        ({"idempotency_key": "k-l", "url": "https://localhost/hooks"}, "url", "loopback"),
        ({"idempotency_key": "k-p", "url": "https://10.0.0.8/hooks"}, "url", "private"),
        (
            {"idempotency_key": "k-t", "event_types": ["order.paid", "order.exploded"]},
            "event_types",
            "unknown",
        ),
    ],
)
def test_bad_register_is_invalid_argument_naming_the_field(
    call: Any, fields: dict[str, Any], field: str, says: str
) -> None:
    error = rpc_error(call, lambda stub: stub.RegisterEndpoint(register_request(**fields)))
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert violated_field(error) == field
    assert says in error.details()


def test_register_is_idempotent_and_shows_the_secret_only_when_registered_or_rotated(call: Any) -> None:
    async def use(stub: Stub) -> tuple[Any, ...]:
        first = await stub.RegisterEndpoint(register_request(idempotency_key="k-same"))
        again = await stub.RegisterEndpoint(register_request(idempotency_key="k-same"))
        updated = await stub.UpdateEndpoint(
            pb.UpdateEndpointRequest(
                endpoint_id=first.endpoint_id, url=PUBLIC_URL, event_types=["order.paid"], enabled=True
            )
        )
        rotated = await stub.RotateSecret(pb.RotateSecretRequest(endpoint_id=first.endpoint_id))
        return first, again, updated, rotated

    first, again, updated, rotated = call(use)
    assert first == again
    assert first.secret.startswith("whsec_")
    assert updated.secret == "" and list(updated.event_types) == ["order.paid"]
    assert rotated.secret.startswith("whsec_") and rotated.secret != first.secret
    assert rotated.endpoint.secret == ""
    assert rotated.endpoint.HasField("previous_secret_expires_at")


def test_same_key_for_another_request_is_already_exists(call: Any) -> None:
    call(lambda stub: stub.RegisterEndpoint(register_request(idempotency_key="k-conflict")))
    error = rpc_error(
        call,
        lambda stub: stub.RegisterEndpoint(
            register_request(idempotency_key="k-conflict", merchant_id="m_other")
        ),
    )
    assert error.code() is grpc.StatusCode.ALREADY_EXISTS


@pytest.mark.parametrize(
    ("use", "code", "field"),
    [
        (
            lambda s: s.GetDelivery(pb.GetDeliveryRequest(delivery_id="dlv_nope")),
            grpc.StatusCode.NOT_FOUND,
            None,
        ),
        (lambda s: s.GetDelivery(pb.GetDeliveryRequest()), grpc.StatusCode.INVALID_ARGUMENT, "delivery_id"),
        (
            lambda s: s.ListDeliveries(pb.ListDeliveriesRequest()),
            grpc.StatusCode.INVALID_ARGUMENT,
            "order_id",
        ),
        (
            lambda s: s.ListDeliveries(pb.ListDeliveriesRequest(order_id="o", page_size=9999)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "page_size",
        ),
        (
            lambda s: s.Redeliver(pb.RedeliverRequest(delivery_id="d", endpoint_id="e")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "delivery_id",
        ),
        (lambda s: s.Redeliver(pb.RedeliverRequest(delivery_id="dlv_nope")), grpc.StatusCode.NOT_FOUND, None),
        (
            lambda s: s.RotateSecret(pb.RotateSecretRequest(endpoint_id="ntf_nope")),
            grpc.StatusCode.NOT_FOUND,
            None,
        ),
        (
            lambda s: s.RotateSecret(pb.RotateSecretRequest(endpoint_id="ntf_nope", overlap_s=-1)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "overlap_s",
        ),
        (
            lambda s: s.UpdateEndpoint(pb.UpdateEndpointRequest(endpoint_id="ntf_nope", url="ftp://x")),
            grpc.StatusCode.INVALID_ARGUMENT,
            "url",
        ),
        (
            lambda s: s.UpdateEndpoint(pb.UpdateEndpointRequest(endpoint_id="ntf_nope", url=PUBLIC_URL)),
            grpc.StatusCode.NOT_FOUND,
            None,
        ),
    ],
)
def test_bad_or_unknown_ids_get_their_status(
    call: Any, use: Callable[[Stub], Any], code: grpc.StatusCode, field: str | None
) -> None:
    error = rpc_error(call, use)
    assert error.code() is code
    if field is not None:
        assert violated_field(error) == field


def test_list_deliveries_of_an_endpoint_without_any_is_empty(call: Any) -> None:
    async def use(stub: Stub) -> pb.ListDeliveriesResponse:
        endpoint = await stub.RegisterEndpoint(register_request(idempotency_key="k-list"))
        return await stub.ListDeliveries(
            pb.ListDeliveriesRequest(endpoint_id=endpoint.endpoint_id, status=pb.DELIVERY_STATUS_DEAD)
        )

    assert list(call(use).deliveries) == []
