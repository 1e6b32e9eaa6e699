"""The interceptor against a real server and a real database: what a caller sees on the wire."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from google.rpc import error_details_pb2, status_pb2
from paykit.common.v1 import money_pb2
from paykit.idempotency import MAX_KEY_LENGTH, request_hash
from paykit.order.v1 import order_pb2
from sqlalchemy import Engine, text

SERVICE_NAME = "paykit.order.v1.OrderService"
STATUS_DETAILS_KEY = "grpc-status-details-bin"
CALL_TIMEOUT_S = 10.0
CONCURRENT_CALLERS = 10


def _method(name: str) -> str:
    return f"/{SERVICE_NAME}/{name}"


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


async def call_raw(
    channel: grpc.aio.Channel,
    name: str,
    request: Message,
    key: str | None = None,
    timeout_s: float = CALL_TIMEOUT_S,
) -> bytes:
    """The response exactly as it came over the wire (no deserializer)."""
    call = channel.unary_unary(_method(name), request_serializer=_serialize)
    metadata = (("idempotency-key", key),) if key is not None else None
    response: bytes = await call(request, metadata=metadata, timeout=timeout_s)
    return response


async def call_error(
    channel: grpc.aio.Channel, name: str, request: Message, key: str | None = None
) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call_raw(channel, name, request, key)
    return info.value


def field_violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """(field, description) of the BadRequest detail in the status, if any."""
    details = dict(error.trailing_metadata() or ()).get(STATUS_DETAILS_KEY)
    if details is None:
        return []
    status = status_pb2.Status.FromString(details)
    violations: list[tuple[str, str]] = []
    for detail in status.details:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            violations.extend((v.field, v.description) for v in bad_request.field_violations)
    return violations


def rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT * FROM idempotency_keys ORDER BY scope, key")))


def run(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def create_request(amount_minor: int = 1999, order_no: str = "M-1") -> order_pb2.CreateOrderRequest:
    return order_pb2.CreateOrderRequest(
        merchant_id="merchant-1",
        merchant_order_no=order_no,
        amount=money_pb2.Money(minor=amount_minor, currency="CNY"),
        subject="tea",
    )


def test_same_key_and_request_runs_the_handler_once_and_returns_the_first_bytes(
    idem_serve: Any, idem_servicer: Any, idem_engine: Engine
) -> None:
    async def scenario() -> None:
        async with idem_serve(idem_servicer) as channel:
            first = await call_raw(channel, "CreateOrder", create_request(), key="k-1")
            second = await call_raw(channel, "CreateOrder", create_request(), key="k-1")
            assert second == first
            assert order_pb2.Order.FromString(first).order_id
            assert idem_servicer.calls["CreateOrder"] == 1
            # Another key is another request: the handler runs.
            third = await call_raw(channel, "CreateOrder", create_request(), key="k-2")
            assert third != first
            assert idem_servicer.calls["CreateOrder"] == 2

    run(scenario)
    stored = {row.key: row for row in rows(idem_engine)}
    assert stored["k-1"].state == "COMPLETED"
    assert stored["k-1"].scope == _method("CreateOrder")


def test_same_key_with_a_different_request_is_already_exists_naming_the_key_and_field(
    idem_serve: Any, idem_servicer: Any
) -> None:
    async def scenario() -> None:
        async with idem_serve(idem_servicer) as channel:
            await call_raw(channel, "CreateOrder", create_request(amount_minor=1999), key="k-1")
            error = await call_error(channel, "CreateOrder", create_request(amount_minor=2000), key="k-1")
            assert error.code() == grpc.StatusCode.ALREADY_EXISTS
            message = error.details() or ""
            assert "idempotency_key 'k-1'" in message
            assert "different request" in message
            assert [field for field, _ in field_violations(error)] == ["idempotency_key"]
            assert idem_servicer.calls["CreateOrder"] == 1

    run(scenario)


def test_concurrent_duplicates_run_the_handler_once_and_all_get_identical_bytes(
    idem_serve: Any, idem_servicer: Any
) -> None:
    # A double click: the duplicates arrive while the first call is still running.
    idem_servicer.delay_s = 0.3

    async def scenario() -> None:
        async with idem_serve(idem_servicer) as channel:
            responses = await asyncio.gather(
                *(
                    call_raw(channel, "CreateOrder", create_request(), key="double-click")
                    for _ in range(CONCURRENT_CALLERS)
                )
            )
            assert len(set(responses)) == 1
            assert idem_servicer.calls["CreateOrder"] == 1

    run(scenario)


def test_a_failed_call_is_not_stored_so_its_retry_runs_the_handler_again(
    idem_serve: Any, idem_servicer: Any, idem_engine: Engine
) -> None:
    idem_servicer.failures_left = 1

    async def scenario() -> None:
        async with idem_serve(idem_servicer) as channel:
            error = await call_error(channel, "CreateOrder", create_request(), key="retry-me")
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert error.details() == "the channel refused this attempt"  # re-raised unchanged
            assert rows(idem_engine) == []
            retried = await call_raw(channel, "CreateOrder", create_request(), key="retry-me")
            assert order_pb2.Order.FromString(retried).order_id
            assert idem_servicer.calls["CreateOrder"] == 2

    run(scenario)


def test_an_aborted_call_is_not_stored_so_its_retry_runs_the_handler_again(
    idem_serve: Any, idem_servicer: Any, idem_engine: Engine
) -> None:
    idem_servicer.pay_aborts_left = 1
    pay = order_pb2.PayOrderRequest(order_id="o-1", method="qr")

    async def scenario() -> None:
        async with idem_serve(idem_servicer) as channel:
            error = await call_error(channel, "PayOrder", pay, key="pay-1")
            assert (error.code(), error.details()) == (grpc.StatusCode.UNAVAILABLE, "channel outage")
            # context.abort() sends the status before the interceptor can release
            # the claim, so an immediate retry may find it still held; it waits
            # for the release and then runs the handler itself.
            first = await call_raw(channel, "PayOrder", pay, key="pay-1")
            assert await call_raw(channel, "PayOrder", pay, key="pay-1") == first
            assert idem_servicer.calls["PayOrder"] == 2

    run(scenario)
    assert [row.state for row in rows(idem_engine)] == ["COMPLETED"]


def test_an_error_status_set_without_raising_is_not_stored(
    idem_serve: Any, idem_servicer: Any, idem_engine: Engine
) -> None:
    idem_servicer.close_sets_error_status = True
    request = order_pb2.CloseOrderRequest(order_id="o-1", reason="merchant asked")

    async def scenario() -> None:
        async with idem_serve(idem_servicer) as channel:
            for _ in range(2):
                error = await call_error(channel, "CloseOrder", request, key="close-1")
                assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert idem_servicer.calls["CloseOrder"] == 2
            assert rows(idem_engine) == []

    run(scenario)


def test_after_the_ttl_the_key_runs_the_handler_again_even_for_another_request(
    idem_serve: Any, idem_servicer: Any
) -> None:
    async def scenario() -> None:
        async with idem_serve(idem_servicer, ttl_s=1.0) as channel:
            first = await call_raw(channel, "CreateOrder", create_request(), key="short-lived")
            assert await call_raw(channel, "CreateOrder", create_request(), key="short-lived") == first
            await asyncio.sleep(1.3)
            again = await call_raw(channel, "CreateOrder", create_request(), key="short-lived")
            assert again != first
            assert idem_servicer.calls["CreateOrder"] == 2
            await asyncio.sleep(1.3)
            other = create_request(amount_minor=5000)
            reused = await call_raw(channel, "CreateOrder", other, key="short-lived")
            assert order_pb2.Order.FromString(reused).amount.minor == 5000

    run(scenario)


def _insert_claim(engine: Engine, key: str, request: Message, claimed_until: str) -> None:
    """A claim as a claimant left it: IN_PROGRESS, never completed."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO idempotency_keys (scope, key, request_hash, state, claim_token, "
                "expires_at, claimed_until) VALUES (:scope, :key, :hash, 'IN_PROGRESS', 'dead-claimant', "
                f"now() + interval '1 hour', {claimed_until})"
            ),
            {"scope": _method("CreateOrder"), "key": key, "hash": request_hash(request)},
        )


def test_a_stale_claim_of_a_dead_claimant_is_taken_over(
    idem_serve: Any, idem_servicer: Any, idem_engine: Engine
) -> None:
    _insert_claim(idem_engine, "orphan", create_request(), "now() - interval '1 second'")

    async def scenario() -> None:
        async with idem_serve(idem_servicer) as channel:
            first = await call_raw(channel, "CreateOrder", create_request(), key="orphan")
            assert idem_servicer.calls["CreateOrder"] == 1
            assert await call_raw(channel, "CreateOrder", create_request(), key="orphan") == first

    run(scenario)
    (row,) = rows(idem_engine)
    assert row.state == "COMPLETED"
    assert row.claim_token != "dead-claimant"


def test_a_live_claim_makes_a_duplicate_wait_then_give_up_as_unavailable(
    idem_serve: Any, idem_servicer: Any, idem_engine: Engine
) -> None:
    # The claimant is alive for another 30 s; this server waits at most ~0.35 s.
    _insert_claim(idem_engine, "busy", create_request(), "now() + interval '30 seconds'")

    async def scenario() -> None:
        async with idem_serve(idem_servicer, in_progress_timeout_s=0.3) as channel:
            error = await call_error(channel, "CreateOrder", create_request(), key="busy")
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            assert "still in progress" in (error.details() or "")
            # A different request under the live claim's key is a conflict, not a wait.
            error = await call_error(channel, "CreateOrder", create_request(amount_minor=1), key="busy")
            assert error.code() == grpc.StatusCode.ALREADY_EXISTS
            assert idem_servicer.calls["CreateOrder"] == 0

    run(scenario)


def test_a_missing_required_key_is_invalid_argument_naming_idempotency_key(
    idem_serve: Any, idem_servicer: Any
) -> None:
    async def scenario() -> None:
        async with idem_serve(idem_servicer) as channel:
            error = await call_error(channel, "CreateOrder", create_request())
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert (error.details() or "").startswith("idempotency_key: is required")
            assert [field for field, _ in field_violations(error)] == ["idempotency_key"]
            # In the request field (RefundOrder's rule) the same holds.
            refund = order_pb2.RefundOrderRequest(order_id="o-1", reason="damaged")
            error = await call_error(channel, "RefundOrder", refund)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert [field for field, _ in field_violations(error)] == ["idempotency_key"]
            assert sum(idem_servicer.calls.values()) == 0

    run(scenario)


def test_keys_longer_than_128_characters_are_refused(idem_serve: Any, idem_servicer: Any) -> None:
    async def scenario() -> None:
        async with idem_serve(idem_servicer) as channel:
            too_long = "k" * (MAX_KEY_LENGTH + 1)
            error = await call_error(channel, "CreateOrder", create_request(), key=too_long)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "at most 128 characters" in (error.details() or "")
            assert idem_servicer.calls["CreateOrder"] == 0
            longest = "k" * MAX_KEY_LENGTH
            first = await call_raw(channel, "CreateOrder", create_request(), key=longest)
            assert await call_raw(channel, "CreateOrder", create_request(), key=longest) == first

    run(scenario)


def test_a_key_in_the_request_field_replays_and_must_agree_with_the_metadata(
    idem_serve: Any, idem_servicer: Any
) -> None:
    refund = order_pb2.RefundOrderRequest(idempotency_key="refund-1", order_id="o-1", reason="damaged")

    async def scenario() -> None:
        async with idem_serve(idem_servicer) as channel:
            first = await call_raw(channel, "RefundOrder", refund)
            assert await call_raw(channel, "RefundOrder", refund, key="refund-1") == first
            assert idem_servicer.calls["RefundOrder"] == 1
            error = await call_error(channel, "RefundOrder", refund, key="refund-2")
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "different keys" in (error.details() or "")

    run(scenario)


def test_unlisted_methods_and_calls_without_an_optional_key_run_every_time(
    idem_serve: Any, idem_servicer: Any, idem_engine: Engine
) -> None:
    async def scenario() -> None:
        async with idem_serve(idem_servicer) as channel:
            get = order_pb2.GetOrderRequest(order_id="o-1")
            # GetOrder is not listed: even a key in the metadata is ignored.
            assert await call_raw(channel, "GetOrder", get, key="g") != await call_raw(
                channel, "GetOrder", get, key="g"
            )
            pay = order_pb2.PayOrderRequest(order_id="o-1", method="qr")
            assert await call_raw(channel, "PayOrder", pay) != await call_raw(channel, "PayOrder", pay)
            assert idem_servicer.calls["GetOrder"] == 2
            assert idem_servicer.calls["PayOrder"] == 2

    run(scenario)
    assert rows(idem_engine) == []


def test_one_key_on_two_methods_is_two_independent_keys(idem_serve: Any, idem_servicer: Any) -> None:
    async def scenario() -> None:
        async with idem_serve(idem_servicer) as channel:
            await call_raw(channel, "CreateOrder", create_request(), key="shared")
            pay = order_pb2.PayOrderRequest(order_id="o-1", method="qr")
            await call_raw(channel, "PayOrder", pay, key="shared")
            assert idem_servicer.calls["CreateOrder"] == 1
            assert idem_servicer.calls["PayOrder"] == 1

    run(scenario)
