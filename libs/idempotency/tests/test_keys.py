"""Pure rules, no I/O: the request hash, reading a key, deciding on an existing row, settings."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from paykit.common.v1 import money_pb2
from paykit.errors import InvalidArgument
from paykit.idempotency import IdempotencySettings, KeyRule, full_method, request_hash
from paykit.idempotency.claims import Decision, decide
from paykit.idempotency.keys import key_of
from paykit.idempotency.schema import KeyState
from paykit.order.v1 import order_pb2
from paykit.settings import SettingsError, load_settings

# Small alphabets, so independent draws are often equal and both sides of ⇔ get exercised.
_texts = st.text(alphabet="ab", max_size=2)
_requests = st.builds(
    order_pb2.CreateOrderRequest,
    merchant_id=_texts,
    merchant_order_no=_texts,
    amount=st.one_of(
        st.none(),
        st.builds(money_pb2.Money, minor=st.integers(-2, 2), currency=st.sampled_from(["", "CNY"])),
    ),
    subject=st.sampled_from(["", "tea", "茶"]),
    expires_in_s=st.integers(0, 1),
)


@given(_requests, _requests)
def test_equal_requests_and_only_equal_requests_hash_equal(
    a: order_pb2.CreateOrderRequest, b: order_pb2.CreateOrderRequest
) -> None:
    assert (a == b) == (request_hash(a) == request_hash(b))


@given(_requests, st.randoms(use_true_random=False))
def test_the_hash_ignores_the_order_fields_arrive_in_on_the_wire(
    request: order_pb2.CreateOrderRequest, rnd: random.Random
) -> None:
    # Protobuf allows fields in any order; a client library may use another one.
    pieces = []
    for field, value in request.ListFields():
        single = order_pb2.CreateOrderRequest()
        if field.message_type is not None:
            getattr(single, field.name).CopyFrom(value)
        else:
            setattr(single, field.name, value)
        pieces.append(single.SerializeToString())
    rnd.shuffle(pieces)
    reordered = order_pb2.CreateOrderRequest.FromString(b"".join(pieces))
    assert request_hash(reordered) == request_hash(request)


def test_a_request_from_another_message_type_with_the_same_bytes_hashes_the_same() -> None:
    # Scope (the method) is part of the key, so types never meet in one comparison.
    assert request_hash(order_pb2.GetOrderRequest(order_id="x")) == request_hash(
        order_pb2.CloseOrderRequest(order_id="x")
    )


@pytest.mark.parametrize(
    ("state", "same", "expired", "stale", "expected"),
    [
        (KeyState.COMPLETED, True, False, False, Decision.REPLAY),
        (KeyState.COMPLETED, False, False, False, Decision.CONFLICT),
        (KeyState.COMPLETED, True, True, False, Decision.TAKE_OVER),
        (KeyState.COMPLETED, False, True, False, Decision.TAKE_OVER),
        (KeyState.IN_PROGRESS, True, False, False, Decision.BUSY),
        (KeyState.IN_PROGRESS, False, False, False, Decision.CONFLICT),
        (KeyState.IN_PROGRESS, True, False, True, Decision.TAKE_OVER),
        (KeyState.IN_PROGRESS, False, False, True, Decision.CONFLICT),
        (KeyState.IN_PROGRESS, False, True, True, Decision.TAKE_OVER),
        # Expired but its claimant is alive: never two handlers at once.
        (KeyState.IN_PROGRESS, True, True, False, Decision.BUSY),
        (KeyState.IN_PROGRESS, False, True, False, Decision.CONFLICT),
    ],
)
def test_decision_for_an_existing_row(
    state: KeyState, same: bool, expired: bool, stale: bool, expected: Decision
) -> None:
    assert decide(state, same, expired, stale) is expected


def test_key_of_reads_metadata_then_the_request_field() -> None:
    rule = KeyRule(request_field="idempotency_key")
    refund = order_pb2.RefundOrderRequest(idempotency_key="r-1")
    assert key_of(rule, refund, ()) == "r-1"
    assert key_of(rule, order_pb2.RefundOrderRequest(), [("idempotency-key", "m-1")]) == "m-1"
    assert key_of(rule, refund, [("idempotency-key", "r-1")]) == "r-1"
    assert key_of(rule, order_pb2.RefundOrderRequest(), [("other", "x")]) is None


@pytest.mark.parametrize(
    ("key", "reason"),
    [("x" * 129, "at most 128 characters"), ("a\x00b", "printable"), ("tab\there", "printable")],
)
def test_key_of_refuses_bad_keys_naming_the_field(key: str, reason: str) -> None:
    with pytest.raises(InvalidArgument, match=reason) as info:
        key_of(KeyRule(), order_pb2.PayOrderRequest(), [("idempotency-key", key)])
    assert info.value.field == "idempotency_key"


def test_a_rule_for_a_field_the_request_lacks_is_a_wiring_error() -> None:
    with pytest.raises(TypeError, match="no field 'idempotency_key'"):
        key_of(KeyRule(request_field="idempotency_key"), order_pb2.PayOrderRequest(), ())


def test_rules_and_method_names_are_checked_when_built() -> None:
    with pytest.raises(ValueError, match="metadata_key, a request_field"):
        KeyRule(metadata_key=None)
    with pytest.raises(ValueError, match="lowercase"):
        KeyRule(metadata_key="Idempotency-Key")
    service = order_pb2.DESCRIPTOR.services_by_name["OrderService"]
    assert full_method(service, "CreateOrder") == "/paykit.order.v1.OrderService/CreateOrder"
    with pytest.raises(ValueError, match="no method 'Create'"):
        full_method(service, "Create")


def test_settings_default_to_a_day_and_a_minute_and_refuse_non_positive_values() -> None:
    defaults = load_settings(IdempotencySettings, {})
    assert (defaults.ttl_s, defaults.in_progress_timeout_s) == (86400.0, 60.0)
    custom = load_settings(
        IdempotencySettings, {"IDEMPOTENCY_TTL_S": "3600", "IDEMPOTENCY_IN_PROGRESS_TIMEOUT_S": "2.5"}
    )
    assert (custom.ttl_s, custom.in_progress_timeout_s) == (3600.0, 2.5)
    with pytest.raises(SettingsError, match="IDEMPOTENCY_TTL_S must be positive"):
        load_settings(IdempotencySettings, {"IDEMPOTENCY_TTL_S": "0"})
