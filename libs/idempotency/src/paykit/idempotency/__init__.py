"""Idempotency keys for mutating gRPC calls: a table, a server interceptor and a janitor.

Wiring a service:

    # migration
    from paykit.idempotency.schema import create_idempotency_table_v1
    create_idempotency_table_v1(op)

    # bootstrap
    settings = load_settings(IdempotencySettings)
    service = order_pb2.DESCRIPTOR.services_by_name["OrderService"]
    interceptor = IdempotencyInterceptor.from_settings(engine, {
        full_method(service, "CreateOrder"): KeyRule(),
        full_method(service, "RefundOrder"): KeyRule(request_field="idempotency_key", required=True),
    }, settings)
    janitor = IdempotencyJanitor(engine).periodic_task()
    ServiceParts(..., interceptors=[interceptor],
                 extra_start=[janitor.start], extra_stop=[janitor.stop])
"""

from paykit.idempotency.interceptor import IdempotencyInterceptor
from paykit.idempotency.janitor import IdempotencyJanitor
from paykit.idempotency.keys import METADATA_KEY, KeyRule, full_method, keyed_methods, request_hash
from paykit.idempotency.schema import MAX_KEY_LENGTH, create_idempotency_table_v1, idempotency_keys
from paykit.idempotency.settings import IdempotencySettings

__all__ = [
    "MAX_KEY_LENGTH",
    "METADATA_KEY",
    "IdempotencyInterceptor",
    "IdempotencyJanitor",
    "IdempotencySettings",
    "KeyRule",
    "create_idempotency_table_v1",
    "full_method",
    "idempotency_keys",
    "keyed_methods",
    "request_hash",
]
