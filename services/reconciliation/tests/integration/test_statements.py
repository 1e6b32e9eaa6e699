"""Importing statement files into the reconciliation database: once per file (by sha256), one
current file per channel and day, a different one only by an explicit replacement."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from paykit.errors import FailedPrecondition, InvalidArgument
from reconciliation.service_layer.statements import import_statement
from reconciliation.service_layer.unit_of_work import UowFactory
from reconciliation.statements.base import ParsedStatement, digest
from sqlalchemy import Engine, text

DAY = date(2026, 5, 1)


def statement(content: bytes, lines: int, channel: str = "wechatpay", day: date = DAY) -> ParsedStatement:
    parsed = ParsedStatement(
        format="wechatpay-trade-bill",
        channel=channel,
        business_day=day,
        filename=f"bill-{digest(content)[:6]}.csv",
        sha256=digest(content),
        account="1900000109",
    )
    for n in range(lines):
        parsed.add(
            channel=channel, business_day=day, line_no=n + 1, kind="PAYMENT",
            channel_txn_id=f"4200000{n:05d}", our_id=f"pay_{n}", reference=f"pay_{n}", batch_id=None,
            amount_minor=1000 + n, currency="CNY", fee_minor=6, status="SUCCEEDED",
            occurred_at=datetime(2026, 5, 1, 2, n, tzinfo=UTC),
        )  # fmt: skip
    return parsed


def lines_of(engine: Engine, file_id: str) -> list[tuple[int, str, int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT line_no, our_id, amount_minor FROM statement_lines WHERE file_id = :f ORDER BY line_no"
            ),
            {"f": file_id},
        )
        return [tuple(row) for row in rows]


def test_the_same_file_twice_is_one_import_and_another_file_needs_an_explicit_replacement(
    uow_factory: UowFactory, recon_engine: Engine
) -> None:
    first = statement(b"the channel's first bill", lines=3)
    imported = import_statement(uow_factory, first)
    assert imported.created and imported.file.line_count == 3
    assert lines_of(recon_engine, imported.file.file_id) == [
        (1, "pay_0", 1000),
        (2, "pay_1", 1001),
        (3, "pay_2", 1002),
    ]

    again = import_statement(uow_factory, statement(b"the channel's first bill", lines=3))
    assert not again.created and again.file.file_id == imported.file.file_id

    corrected = statement(b"the channel's corrected bill", lines=2)
    with pytest.raises(FailedPrecondition, match=r"already bill-.*explicitly, with a reason"):
        import_statement(uow_factory, corrected)
    with pytest.raises(InvalidArgument, match="reason"):
        import_statement(uow_factory, corrected, replace=True)

    replacing = import_statement(uow_factory, corrected, replace=True, reason="the channel corrected line 3")
    assert replacing.created and replacing.replaced_file_id == imported.file.file_id
    with recon_engine.connect() as conn:
        files = conn.execute(
            text(
                "SELECT file_id, replaced_by, replace_reason FROM statement_files "
                "WHERE channel = 'wechatpay' AND business_day = :d ORDER BY imported_at"
            ),
            {"d": DAY},
        ).all()
    assert [tuple(f) for f in files] == [
        (imported.file.file_id, replacing.file.file_id, "the channel corrected line 3"),
        (replacing.file.file_id, None, None),
    ]
    # The replaced file's lines are kept for the audit.
    assert len(lines_of(recon_engine, imported.file.file_id)) == 3
    assert len(lines_of(recon_engine, replacing.file.file_id)) == 2


def test_the_same_bytes_as_another_channel_or_day_are_refused(uow_factory: UowFactory) -> None:
    content = b"a bill imported under one day only"
    import_statement(uow_factory, statement(content, lines=1, day=date(2026, 5, 2)))
    with pytest.raises(FailedPrecondition, match="was imported as wechatpay's statement of 2026-05-02"):
        import_statement(uow_factory, statement(content, lines=1, day=date(2026, 5, 3)))


def test_an_empty_statement_is_a_statement(uow_factory: UowFactory, recon_engine: Engine) -> None:
    imported = import_statement(uow_factory, statement(b"no trade that day", lines=0, day=date(2026, 5, 4)))
    assert imported.created and imported.file.line_count == 0
    assert lines_of(recon_engine, imported.file.file_id) == []
