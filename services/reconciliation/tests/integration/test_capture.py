"""The capture against real Kafka and PostgreSQL: payment and refund envelopes produced on the
topics become internal records on the right business day, once each, whatever is replayed,
repeated, poisoned or killed on the way."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from paykit.devstack.fixtures import committed_offsets, read_n, unique_name, wait_until
from paykit.ids import IdKind, new_id
from paykit.messaging.topics import dlq_of
from sqlalchemy import Engine, text

from .support import (
    CaptureProcess,
    payment_failed,
    payment_succeeded,
    produce,
    refund_created,
    refund_failed,
    refund_succeeded,
)

CHINA = timezone(timedelta(hours=8))
CAPTURED_WAIT_S = 60.0
Capture = Callable[..., CaptureProcess]


def records(engine: Engine, our_ids: list[str]) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT * FROM internal_records WHERE our_id = ANY(:ids)"), {"ids": our_ids}
        ).all()
    return {row.our_id: row for row in rows}


def wait_for_records(engine: Engine, our_ids: list[str], what: str = "records") -> dict[str, Any]:
    wait_until(lambda: len(records(engine, our_ids)) == len(set(our_ids)), CAPTURED_WAIT_S, what)
    return records(engine, our_ids)


def wait_for_status(engine: Engine, our_id: str, status: str) -> Any:
    def reached() -> bool:
        found = records(engine, [our_id]).get(our_id)
        return found is not None and found.status == status

    wait_until(reached, CAPTURED_WAIT_S, f"{our_id} to be {status}")
    return records(engine, [our_id])[our_id]


def count(engine: Engine, sql: str, **params: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def test_business_day_is_the_date_in_the_channel_time_zone(
    capture: Capture, recon_engine: Engine, shared_kafka_bootstrap: str, event_topics: tuple[str, str]
) -> None:
    payments, _ = event_topics
    capture()
    before_midnight = datetime(2026, 3, 1, 23, 59, 59, tzinfo=CHINA)
    after_midnight = datetime(2026, 3, 2, 0, 0, 1, tzinfo=CHINA)
    events = {
        ("alipay", "before"): payment_succeeded(payments, channel="alipay", at=before_midnight),
        ("alipay", "after"): payment_succeeded(payments, channel="alipay", at=after_midnight),
        ("card", "before"): payment_succeeded(payments, channel="card", at=before_midnight),
        ("card", "after"): payment_succeeded(payments, channel="card", at=after_midnight),
        # Not in RECON_CHANNEL_TIMEZONES: RECON_DEFAULT_TIMEZONE (UTC).
        ("newchannel", "after"): payment_succeeded(payments, channel="newchannel", at=after_midnight),
    }
    produce(shared_kafka_bootstrap, events.values())
    found = wait_for_records(recon_engine, [e.aggregate_id for e in events.values()])
    day = {key: found[event.aggregate_id].business_day for key, event in events.items()}

    # Two seconds apart, on two Alipay statement days (Beijing midnight closes the bill)...
    assert day["alipay", "before"] == date(2026, 3, 1)
    assert day["alipay", "after"] == date(2026, 3, 2)
    # ...and on one card statement day: both instants are 2026-03-01 ~16:00 UTC.
    assert day["card", "before"] == day["card", "after"] == date(2026, 3, 1)
    assert day["newchannel", "after"] == date(2026, 3, 1)
    record = found[events["alipay", "before"].aggregate_id]
    assert record.occurred_at == before_midnight.astimezone(UTC)
    assert (record.kind, record.status, record.amount_minor, record.currency) == (
        "PAYMENT",
        "SUCCEEDED",
        1999,
        "CNY",
    )
    assert record.reference == record.our_id and record.channel_txn_id.startswith("T")
    assert record.fee_minor is None, "no payment event carries a fee"
    assert record.source_event_id == events["alipay", "before"].event_id


def test_replayed_and_repeated_events_make_no_second_row_and_success_is_never_erased(
    capture: Capture, recon_engine: Engine, shared_kafka_bootstrap: str, event_topics: tuple[str, str]
) -> None:
    payments, _ = event_topics
    at = datetime(2026, 3, 5, 12, 0, tzinfo=UTC)
    first = payment_succeeded(payments, at=at)
    payment_id = first.aggregate_id
    # The same event twice (a relay's at-least-once), the success again under another event id,
    # then a failure of the same payment: one row, still SUCCEEDED, from the first event.
    repeated = payment_succeeded(payments, payment_id=payment_id, at=at + timedelta(seconds=5))
    late_failure = payment_failed(payments, payment_id=payment_id, at=at + timedelta(seconds=9))
    capture()
    produce(shared_kafka_bootstrap, [first, first, repeated, late_failure])
    # A later payment on the same partition (same key) shows the earlier ones were consumed.
    marker = payment_succeeded(payments, payment_id=None, at=at)
    produce(shared_kafka_bootstrap, [marker])
    wait_for_records(recon_engine, [payment_id, marker.aggregate_id])
    wait_until(
        lambda: (
            count(recon_engine, "SELECT count(*) FROM inbox WHERE event_id = :e", e=late_failure.event_id)
            == 1
        ),
        CAPTURED_WAIT_S,
        "the late failure to be consumed",
    )
    row = records(recon_engine, [payment_id])[payment_id]
    assert row.status == "SUCCEEDED" and row.source_event_id == first.event_id
    assert count(recon_engine, "SELECT count(*) FROM internal_records WHERE our_id = :p", p=payment_id) == 1

    # A failed payment that never succeeded is recorded FAILED; a closed one CLOSED.
    failed = payment_failed(payments, payment_id=new_id(IdKind.PAYMENT), at=at)
    closed = payment_failed(payments, payment_id=new_id(IdKind.PAYMENT), at=at, failure_code="CLOSED")
    produce(shared_kafka_bootstrap, [failed, closed])
    found = wait_for_records(recon_engine, [failed.aggregate_id, closed.aggregate_id])
    assert found[failed.aggregate_id].status == "FAILED"
    assert found[closed.aggregate_id].status == "CLOSED"


def test_refunds_take_their_channel_from_refund_created_and_the_latest_state_wins(
    capture: Capture, recon_engine: Engine, shared_kafka_bootstrap: str, event_topics: tuple[str, str]
) -> None:
    payments, refunds = event_topics
    at = datetime(2026, 3, 6, 15, 30, tzinfo=UTC)  # 23:30 in Beijing: still 2026-03-06 there
    paid = payment_succeeded(payments, channel="wechatpay", minor=10_000, at=at)
    payment_id = paid.aggregate_id
    failing, succeeding = new_id(IdKind.REFUND), new_id(IdKind.REFUND)
    capture()
    produce(
        shared_kafka_bootstrap,
        [
            paid,
            refund_created(refunds, refund_id=failing, payment_id=payment_id, channel="wechatpay", at=at),
            # refund.failed names no channel: its refund.created's is used.
            refund_failed(refunds, refund_id=failing, payment_id=payment_id, at=at + timedelta(minutes=1)),
            refund_created(refunds, refund_id=succeeding, payment_id=payment_id, channel="wechatpay", at=at),
        ],
    )
    pending = wait_for_status(recon_engine, succeeding, "PENDING")
    assert pending.channel_txn_id is None
    failed = wait_for_status(recon_engine, failing, "FAILED")
    assert (failed.kind, failed.channel, failed.reference) == ("REFUND", "wechatpay", payment_id)
    assert failed.business_day == date(2026, 3, 6)

    # 00:30 in Beijing: the refund moved to the next statement day with its success.
    done_at = at + timedelta(hours=1)
    produce(
        shared_kafka_bootstrap,
        [
            refund_succeeded(
                refunds, refund_id=succeeding, payment_id=payment_id, channel="wechatpay", at=done_at
            )
        ],
    )
    done = wait_for_status(recon_engine, succeeding, "SUCCEEDED")
    assert done.channel_txn_id.startswith("R") and done.business_day == date(2026, 3, 7)
    assert done.amount_minor == 500 and done.reference == payment_id
    # A replayed refund.created (a new event id, e.g. from an outbox re-publish) changes nothing.
    replayed = refund_created(
        refunds, refund_id=succeeding, payment_id=payment_id, channel="wechatpay", at=at
    )
    produce(shared_kafka_bootstrap, [replayed])
    wait_until(
        lambda: (
            count(recon_engine, "SELECT count(*) FROM inbox WHERE event_id = :e", e=replayed.event_id) == 1
        ),
        CAPTURED_WAIT_S,
        "the replayed refund.created to be consumed",
    )
    assert records(recon_engine, [succeeding])[succeeding].status == "SUCCEEDED"


def test_poison_goes_to_the_dlq_with_its_reason_and_the_rest_is_captured(
    capture: Capture, recon_engine: Engine, shared_kafka_bootstrap: str, event_topics: tuple[str, str]
) -> None:
    payments, refunds = event_topics
    at = datetime(2026, 3, 8, 9, 0, tzinfo=UTC)
    good = payment_succeeded(payments, at=at)
    # A refund.failed whose refund and payment were never captured: no channel to file it under.
    orphan = refund_failed(refunds, refund_id=new_id(IdKind.REFUND), payment_id=new_id(IdKind.PAYMENT), at=at)
    capture()
    produce(shared_kafka_bootstrap, [good, orphan], raw=[(payments, b"\x08\x96\x01 not an envelope")])
    wait_for_records(recon_engine, [good.aggregate_id])
    dead = read_n(shared_kafka_bootstrap, dlq_of(payments), 1) + read_n(
        shared_kafka_bootstrap, dlq_of(refunds), 1
    )
    reasons = sorted(dict(m.headers() or [])["dlq.reason"].decode() for m in dead)
    assert any("not an Envelope" in r for r in reasons), reasons
    assert any("no channel known" in r and orphan.aggregate_id in r for r in reasons), reasons
    assert all(dict(m.headers() or [])["dlq.consumer"] == b"reconciliation-capture" for m in dead)
    assert not records(recon_engine, [orphan.aggregate_id])


def test_capture_survives_sigkill_and_restart_without_loss_or_double_rows(
    capture: Capture,
    capture_env: dict[str, str],
    recon_engine: Engine,
    shared_kafka_bootstrap: str,
    event_topics: tuple[str, str],
) -> None:
    payments, _ = event_topics
    at = datetime(2026, 3, 9, 10, 0, tzinfo=UTC)
    batches = [
        [payment_succeeded(payments, at=at + timedelta(seconds=i)) for i in range(150)] for _ in range(3)
    ]
    ids = [e.aggregate_id for batch in batches for e in batch]
    process = capture(RECON_CAPTURE_BATCH_SIZE="20")
    produce(shared_kafka_bootstrap, batches[0])
    # Killed as soon as it has written some: whatever it wrote but had not committed to Kafka
    # yet is delivered again after the restart (and must change nothing).
    wait_until(lambda: len(records(recon_engine, ids)) >= 40, CAPTURED_WAIT_S, "some records")
    process.kill()
    written = len(records(recon_engine, ids))
    committed = sum(
        max(o, 0)
        for o in committed_offsets(
            shared_kafka_bootstrap, capture_env["RECON_CAPTURE_GROUP"], payments
        ).values()
    )
    produce(shared_kafka_bootstrap, batches[1])  # while nothing consumes

    restarted = capture(name="capture-2")
    produce(shared_kafka_bootstrap, batches[2])
    found = wait_for_records(recon_engine, ids, "every payment after the restart")
    assert len(found) == len(ids) == 450
    assert (
        count(recon_engine, "SELECT count(*) FROM internal_records WHERE our_id = ANY(:ids)", ids=ids) == 450
    )
    first_events = {e.aggregate_id: e.event_id for batch in batches for e in batch}
    assert all(row.source_event_id == first_events[our_id] for our_id, row in found.items())
    # SIGTERM: the batch in hand is finished and its offsets committed, exit 0.
    assert restarted.stop() == 0
    offsets = committed_offsets(shared_kafka_bootstrap, capture_env["RECON_CAPTURE_GROUP"], payments)
    print(f"\ncapture killed after writing {written} records with offsets of {committed} committed; "
          f"after the restart: {len(found)} records, committed offsets {sum(offsets.values())}")  # fmt: skip


def consumed_to_the_end(bootstrap: str, group: str, topics: tuple[str, ...]) -> bool:
    """The group's committed offsets reached every partition's end."""
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": unique_name("recontest-watermarks-")})
    try:
        for topic in topics:
            committed = committed_offsets(bootstrap, group, topic)
            for partition, offset in committed.items():
                _, high = reader.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                if high > 0 and offset < high:
                    return False
        return True
    finally:
        reader.close()


def snapshot(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT kind, our_id, status, channel, business_day, source_event_id, updated_at "
                 "FROM internal_records ORDER BY kind, our_id")
        ).all()  # fmt: skip


def test_a_new_consumer_group_replaying_every_event_changes_nothing(
    capture: Capture,
    capture_env: dict[str, str],
    recon_engine: Engine,
    shared_kafka_bootstrap: str,
    event_topics: tuple[str, str],
) -> None:
    before = snapshot(recon_engine)
    assert len(before) > 450, "the earlier tests of this module left records to replay"
    # Every event on the topics so far, from the beginning, by a group that never saw any of it.
    group = capture_env["RECON_CAPTURE_GROUP"]
    capture(name="replay")
    wait_until(
        lambda: consumed_to_the_end(shared_kafka_bootstrap, group, event_topics),
        CAPTURED_WAIT_S,
        "the replaying group to reach the end of both topics",
    )
    # Not one row added, changed or touched (updated_at included).
    assert snapshot(recon_engine) == before
