"""NotificationService over gRPC: protobuf messages stop here."""

from __future__ import annotations

import grpc
from paykit.contracts.convert import timestamp
from paykit.db import run_blocking
from paykit.errors import InvalidArgument
from paykit.notification.v1 import notification_pb2 as pb
from paykit.notification.v1 import notification_pb2_grpc

from notification.domain.delivery import Delivery, DeliveryStatus
from notification.domain.endpoint import Endpoint
from notification.service_layer import deliveries, endpoints
from notification.service_layer.deliveries import DeliveryView
from notification.service_layer.endpoints import UrlPolicy
from notification.service_layer.unit_of_work import UowFactory

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["NotificationService"].full_name
_STATUS = {s: pb.DeliveryStatus.Value(f"DELIVERY_STATUS_{s.value}") for s in DeliveryStatus}
_STATUS_IN = {v: k for k, v in _STATUS.items()}


def endpoint_to_proto(endpoint: Endpoint, *, show_secret: bool = False) -> pb.Endpoint:
    return pb.Endpoint(
        endpoint_id=endpoint.endpoint_id,
        merchant_id=endpoint.merchant_id,
        url=endpoint.url,
        event_types=list(endpoint.event_types),
        enabled=endpoint.enabled,
        created_at=timestamp(endpoint.created_at),
        secret=endpoint.secret if show_secret else "",
        previous_secret_expires_at=timestamp(endpoint.previous_secret_expires_at),
    )


def delivery_to_proto(delivery: Delivery, view: DeliveryView | None = None) -> pb.Delivery:
    return pb.Delivery(
        delivery_id=delivery.delivery_id,
        endpoint_id=delivery.endpoint_id,
        merchant_id=delivery.merchant_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        order_id=delivery.order_id,
        status=_STATUS[delivery.status],
        attempts_made=delivery.attempts_made,
        next_attempt_at=timestamp(delivery.next_attempt_at),
        created_at=timestamp(delivery.created_at),
        delivered_at=timestamp(delivery.delivered_at),
        attempts=[
            pb.Attempt(
                number=a.number,
                at=timestamp(a.result.at),
                status_code=a.result.status_code,
                latency_ms=a.result.latency_ms,
                error=a.result.error,
                response=a.result.response,
            )
            for a in (view.attempts if view else [])
        ],
    )


class NotificationServicer(notification_pb2_grpc.NotificationServiceServicer):
    def __init__(self, uow_factory: UowFactory, url_policy: UrlPolicy) -> None:
        self._uow_factory = uow_factory
        self._url_policy = url_policy

    async def RegisterEndpoint(
        self, request: pb.RegisterEndpointRequest, context: grpc.aio.ServicerContext
    ) -> pb.Endpoint:
        endpoint = await run_blocking(
            endpoints.register,
            self._uow_factory,
            self._url_policy,
            request.merchant_id,
            request.url,
            list(request.event_types),
        )
        return endpoint_to_proto(endpoint, show_secret=True)

    async def UpdateEndpoint(
        self, request: pb.UpdateEndpointRequest, context: grpc.aio.ServicerContext
    ) -> pb.Endpoint:
        endpoint = await run_blocking(
            endpoints.update,
            self._uow_factory,
            self._url_policy,
            request.endpoint_id,
            request.url,
            list(request.event_types),
            request.enabled,
        )
        return endpoint_to_proto(endpoint)

    async def RotateSecret(
        self, request: pb.RotateSecretRequest, context: grpc.aio.ServicerContext
    ) -> pb.RotateSecretResponse:
        endpoint = await run_blocking(
            endpoints.rotate_secret, self._uow_factory, request.endpoint_id, request.overlap_s
        )
        return pb.RotateSecretResponse(endpoint=endpoint_to_proto(endpoint), secret=endpoint.secret)

    async def GetDelivery(
        self, request: pb.GetDeliveryRequest, context: grpc.aio.ServicerContext
    ) -> pb.Delivery:
        view = await run_blocking(deliveries.get, self._uow_factory, request.delivery_id)
        return delivery_to_proto(view.delivery, view)

    async def ListDeliveries(
        self, request: pb.ListDeliveriesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDeliveriesResponse:
        status: DeliveryStatus | None = None
        if request.status != pb.DELIVERY_STATUS_UNSPECIFIED:
            if request.status not in _STATUS_IN:
                raise InvalidArgument("status", f"unknown delivery status {request.status}")
            status = _STATUS_IN[request.status]
        found = await run_blocking(
            deliveries.find,
            self._uow_factory,
            request.order_id,
            request.endpoint_id,
            status,
            request.page_size,
        )
        return pb.ListDeliveriesResponse(deliveries=[delivery_to_proto(d) for d in found])

    async def Redeliver(
        self, request: pb.RedeliverRequest, context: grpc.aio.ServicerContext
    ) -> pb.RedeliverResponse:
        ids = await run_blocking(
            deliveries.redeliver, self._uow_factory, request.delivery_id, request.endpoint_id
        )
        return pb.RedeliverResponse(delivery_ids=ids)
