"""`recon` as a user runs it (a subprocess): what `recon match` reports on generated and hand-made
files, that every bad input is one line naming file, line and field with exit 2, and that
`recon run` against a service that does not answer says so."""

# ruff: noqa: RUF001
# (an Alipay bill's full-width punctuation is the format, as in tests/unit/test_statement_formats.py)

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import grpc
import pyarrow.compute as pc
import pytest
from paykit.common.v1.money_pb2 import Money
from paykit.errors import InvalidArgument
from paykit.grpckit.errors import STATUS_DETAILS_KEY, status_details
from paykit.reconciliation.v1 import reconciliation_pb2 as pb
from paykit.reconciliation.v1 import reconciliation_pb2_grpc
from reconciliation.domain.records import INTERNAL_RECORD_SCHEMA
from reconciliation.domain.taxonomy import RECONCILED
from reconciliation.generator import CHANNELS, generate
from reconciliation.statements import alipay

RECON = Path(sys.executable).with_name("recon")  # the console script pyproject declares
DAY = date(2026, 11, 24)
EXIT_CLEAN, EXIT_DISCREPANCIES, EXIT_USAGE, EXIT_SERVICE = 0, 1, 2, 3
CLI_TIMEOUT_S = 120


def recon(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(RECON), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        env={**os.environ, **(env or {})},
    )


def report(out: Path, channel: str, day: date) -> tuple[dict[str, Any], list[dict[str, str]]]:
    stem = out / f"recon-{channel}-{day.isoformat()}"
    document = json.loads(stem.with_suffix(".json").read_text("utf-8"))
    with stem.with_suffix(".csv").open(encoding="utf-8", newline="") as file:
        return document, list(csv.DictReader(file))


def identity(row: dict[str, Any]) -> tuple[str, str, str]:
    """A record as the outcome names it: a line by its number, ours by our id."""
    key = row["line_no"] if row["side"] == "CHANNEL" else row["our_id"]
    return row["side"], row["channel"], str(key)


def test_match_on_a_generated_day_reports_every_planted_discrepancy_with_its_type(tmp_path: Path) -> None:
    generated = generate(tmp_path / "data", rows=300, seed=11)
    day = generated.days[0]
    truth = generated.truth.filter(pc.equal(generated.truth["run_day"], day.business_day)).to_pylist()
    expected = {identity(row): row["expected"] for row in truth if row["expected"] not in RECONCILED}
    reported: dict[tuple[str, str, str], str] = {}
    for channel in CHANNELS:
        done = recon(
            "match",
            day.statement_path,
            day.internal_path,
            "--channel",
            channel,
            "--day",
            day.business_day,
            "--out",
            tmp_path / "out",
        )
        assert done.returncode == EXIT_DISCREPANCIES, done.stderr
        document, rows = report(tmp_path / "out", channel, day.business_day)
        assert [(r["type"], identity(r)) for r in rows] == [
            (d["type"], identity({**d, "line_no": "" if d["line_no"] is None else d["line_no"]}))
            for d in document["discrepancies"]
        ]
        assert {r["channel"] for r in rows} == {channel}
        reported |= {identity(r): r["type"] for r in rows}
        assert f"report: {tmp_path / 'out'}" in " ".join(done.stdout.split())
    assert reported == expected
    assert {
        "CHANNEL_ONLY",
        "INTERNAL_ONLY",
        "AMOUNT_MISMATCH",
        "STATUS_MISMATCH",
        "FEE_MISMATCH",
        "CURRENCY_MISMATCH",
        "DUPLICATE",
        "SUSPENSE",
    } <= set(reported.values())


# -- a real Alipay bill (GBK) against an internal CSV --------------------------------------------------


def alipay_line(trade: str, order: str, kind: str, amount: str, fee: str, refund: str = "") -> str:
    return (
        f"{trade}\t,{order}\t,{kind},商品,2026-11-24 10:00:00,2026-11-24 10:00:05,,,,,buyer,"
        f"{amount},{amount},0.00,0.00,0.00,0.00,0.00,,0.00,0.00,{refund},{fee},0.00,"
    )


LINES = [  # data lines 6..9
    alipay_line("2026112422001", "pay_1", "交易", "100.00", "-0.60"),
    alipay_line("2026112422002", "pay_2", "交易", "49.99", "-0.30"),
    alipay_line("2026112422001", "pay_1", "退款", "-10.00", "0.06", refund="rfd_1"),
    alipay_line("2026112422004", "pay_4", "交易", "20.00", "-0.12"),
]
SUMMARY = "#交易合计：3笔，退款合计：1笔，订单金额（元）：159.99，商家实收（元）：159.99，服务费（元）：-0.96"


def alipay_bill(lines: list[str] = LINES, summary: str = SUMMARY) -> bytes:
    text = [
        alipay.TITLE,
        "#账号：[2088000000000001]",
        "#起始日期：[2026年11月24日 00:00:00]   终止日期：[2026年11月25日 00:00:00]",
        "#-----------------------------------------业务明细列表----------------------------------------",
        ",".join(alipay.HEADER),
        *lines,
        "#-----------------------------------------业务明细列表结束------------------------------------",
        summary,
        "#导出时间：[2026年11月25日 09:15:00]",
    ]
    return "\n".join(text).encode("gbk")


INTERNAL_HEADER = ",".join(INTERNAL_RECORD_SCHEMA.names)
INTERNAL_ROWS = [
    "alipay,2026-11-24,PAYMENT,pay_1,pay_1,2026112422001,10000,CNY,60,REFUNDED,2026-11-24T02:00:04Z,",
    "alipay,2026-11-24,PAYMENT,pay_2,pay_2,2026112422002,4500,CNY,,SUCCEEDED,2026-11-24T02:00:04Z,",
    "alipay,2026-11-24,REFUND,rfd_1,pay_1,,1000,CNY,6,SUCCEEDED,2026-11-24T02:00:03Z,",
    "alipay,2026-11-24,PAYMENT,pay_3,pay_3,,3000,CNY,18,SUCCEEDED,2026-11-24T03:00:00Z,",
    "wechatpay,2026-11-24,PAYMENT,pay_9,pay_9,,3000,CNY,18,SUCCEEDED,2026-11-24T03:00:00Z,",  # left out
]


def write(path: Path, content: bytes | str) -> Path:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def internal_csv(path: Path, rows: list[str] = INTERNAL_ROWS, header: str = INTERNAL_HEADER) -> Path:
    return write(path, "\n".join([header, *rows]) + "\n")


def test_match_on_an_alipay_gbk_bill_and_an_internal_csv_reports_its_discrepancies(tmp_path: Path) -> None:
    bill = write(tmp_path / "alipay-20261124.csv", alipay_bill())
    done = recon(
        "match",
        bill,
        internal_csv(tmp_path / "internal.csv"),
        "--channel",
        "alipay",
        "--day",
        DAY,
        "--out",
        tmp_path,
    )
    assert done.returncode == EXIT_DISCREPANCIES, done.stderr
    document, rows = report(tmp_path, "alipay", DAY)
    assert document["statement"] == {"file": str(bill), "format": alipay.FORMAT, "lines": 4}
    assert document["internal"]["records"] == 4  # the wechatpay record is another channel's
    assert [(r["type"], r["side"], r["line_no"], r["our_id"], r["amount"]) for r in rows] == [
        ("CHANNEL_ONLY", "CHANNEL", "9", "pay_4", "20.00"),
        ("INTERNAL_ONLY", "INTERNAL", "", "pay_3", "30.00"),
        ("AMOUNT_MISMATCH", "CHANNEL", "7", "pay_2", "49.99"),
        ("AMOUNT_MISMATCH", "INTERNAL", "", "pay_2", "45.00"),
    ]
    assert rows[2]["amount_diff_minor"] == "499" and rows[2]["channel_txn_id"] == "2026112422002"
    matched = {(s["side"], s["records"]) for s in document["summary"] if s["type"] == "MATCHED"}
    assert matched == {("CHANNEL", 2), ("INTERNAL", 2)}  # pay_1 (refunded since) and rfd_1 by our id
    assert "AMOUNT_MISMATCH" in done.stdout and "4 records in discrepancies" in done.stdout


def test_match_with_nothing_to_report_exits_zero_with_an_empty_csv(tmp_path: Path) -> None:
    lines = LINES[:1]
    summary = (
        "#交易合计：1笔，退款合计：0笔，订单金额（元）：100.00，商家实收（元）：100.00，服务费（元）：-0.60"
    )
    bill = write(tmp_path / "bill.csv", alipay_bill(lines, summary))
    done = recon(
        "match",
        bill,
        internal_csv(tmp_path / "in.csv", INTERNAL_ROWS[:1]),
        "--channel",
        "alipay",
        "--day",
        DAY,
        "--format",
        "alipay",
        "--out",
        tmp_path / "reports",
    )
    assert done.returncode == EXIT_CLEAN, done.stderr
    document, rows = report(tmp_path / "reports", "alipay", DAY)
    assert rows == [] and document["discrepancies"] == []


# -- bad input: one line, exit 2 -----------------------------------------------------------------------


def bad_bill_amount() -> bytes:
    return alipay_bill([LINES[0].replace("100.00", "100.005", 1), *LINES[1:]])


BAD_INPUTS: list[tuple[str, Any, Any, list[str], str]] = [
    # (case, statement bytes or None for missing, internal text or None for missing, extra args, message)
    ("missing statement", None, "ok", [], "nope-statement: no such file"),
    ("missing internal", "bill", None, [], "nope-internal: no such file"),
    ("bill in utf-8", alipay_bill().decode("gbk").encode("utf-8"), "ok", [], "statement line 1: is UTF-8"),
    (
        "bill not gbk",
        alipay_bill().replace("商品".encode("gbk"), b"\xff\xff", 1),
        "ok",
        [],
        "statement line 5: not gbk (byte 0xff",
    ),
    ("bill bad amount", bad_bill_amount(), "ok", [], "statement line 6, field 订单金额（元）: "),
    (
        "bill of another day",
        "bill",
        "ok",
        ["--day", "2026-11-25"],
        "is the bill of 2026-11-24, not of 2026-11-25",
    ),
    ("unknown format", "bill", "ok", ["--format", "xml"], "--format: unknown statement format 'xml'"),
    (
        "unsniffable",
        b"hello,world\n",
        "ok",
        [],
        "cannot tell the statement format from its content; pass --format",
    ),
    (
        "internal missing a column",
        "bill",
        ",".join(INTERNAL_RECORD_SCHEMA.names[:-2]),
        [],
        "internal line 1: missing column(s) occurred_at, batch_key",
    ),
    (
        "internal bad amount",
        "bill",
        INTERNAL_HEADER + "\n" + INTERNAL_ROWS[0] + "\n" + INTERNAL_ROWS[1].replace("4500", "45.00"),
        [],
        "internal line 3, field amount_minor: '45.00' is not int64",
    ),
    (
        "internal time without zone",
        "bill",
        INTERNAL_HEADER + "\n" + INTERNAL_ROWS[0].replace("Z,", ","),
        [],
        "internal line 2, field occurred_at",
    ),
    (
        "internal not utf-8",
        "bill",
        (INTERNAL_HEADER + "\n" + INTERNAL_ROWS[0].replace("pay_1", "付款")).encode("gbk"),
        [],
        "internal line 2: not UTF-8",
    ),
    (
        "internal breaks the rules",
        "bill",
        INTERNAL_HEADER + "\n" + INTERNAL_ROWS[0].replace("10000", "-5"),
        [],
        "the inputs break the matcher's rules",
    ),
]


@pytest.mark.parametrize(
    ("statement", "internal", "extra", "message"), [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input_is_one_line_naming_where_and_exits_2(
    tmp_path: Path, statement: Any, internal: Any, extra: list[str], message: str
) -> None:
    os.chdir(tmp_path)  # file names in messages are as given on the command line
    statement_path = (
        "nope-statement"
        if statement is None
        else write(Path("statement"), alipay_bill() if statement == "bill" else statement)
    )
    if internal is None:
        internal_path: Path | str = "nope-internal"
    else:
        content = internal_csv(Path("x")).read_bytes() if internal == "ok" else internal
        internal_path = write(Path("internal"), content)
    done = recon("match", statement_path, internal_path, "--channel", "alipay", "--day", DAY, *extra)
    assert done.returncode == EXIT_USAGE, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("recon: error: ") and message in done.stderr, done.stderr
    assert not list(tmp_path.glob("recon-*"))  # nothing half-written


def test_a_parquet_statement_of_the_wrong_schema_is_refused(tmp_path: Path) -> None:
    day = generate(tmp_path, rows=30, seed=1).days[0]
    done = recon(
        "match",
        day.internal_path,
        day.internal_path,
        "--channel",
        "alipay",
        "--day",
        day.business_day,
        "--out",
        tmp_path,
    )
    assert done.returncode == EXIT_USAGE
    assert f"recon: error: {day.internal_path}: not the statement-line schema: columns" in done.stderr


# -- recon run -----------------------------------------------------------------------------------------


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("by", ["option", "environment"])
def test_run_against_an_unreachable_service_says_so_and_exits_3(tmp_path: Path, by: str) -> None:
    target = f"127.0.0.1:{unused_port()}"
    args = ["--target", target] if by == "option" else []
    done = recon(
        "run", "--channel", "alipay", "--day", DAY, "--out", tmp_path, *args, env={"RECON_TARGET": target}
    )
    assert done.returncode == EXIT_SERVICE, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert f"recon: error: RunReconciliation on {target}: UNAVAILABLE: " in done.stderr
    assert not list(tmp_path.glob("recon-*"))


def test_the_module_runs_as_python_m(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reconciliation.entrypoints.cli", "match", "--help"],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    assert done.returncode == 0 and "--amount-tolerance-minor" in done.stdout


class FakeService(reconciliation_pb2_grpc.ReconciliationServiceServicer):
    """Answers as the service does: a report, then its discrepancies two per page; a channel it
    does not know is INVALID_ARGUMENT naming the field (paykit.grpckit's mapping)."""

    def RunReconciliation(self, request: pb.RunReconciliationRequest, context: Any) -> pb.Report:
        if request.channel != "alipay":
            error = InvalidArgument("channel", f"unknown channel {request.channel!r}")
            code = grpc.StatusCode.INVALID_ARGUMENT
            context.set_trailing_metadata(((STATUS_DETAILS_KEY, status_details(error, code)),))
            context.abort(code, error.message)
        cny = {"currency": "CNY"}
        return pb.Report(
            run_id="run_1",
            channel=request.channel,
            business_day=request.business_day,
            status=pb.RUN_STATUS_SUCCEEDED,
            statement_lines=10,
            internal_records=10,
            discrepancies_open=5,
            outcomes=[
                pb.OutcomeCount(
                    type="MATCHED", side=pb.SIDE_CHANNEL, records=5, amount=Money(minor=50000, **cny)
                ),
                pb.OutcomeCount(
                    type="CHANNEL_ONLY", side=pb.SIDE_CHANNEL, records=5, amount=Money(minor=999, **cny)
                ),
            ],
        )

    def ListDiscrepancies(
        self, request: pb.ListDiscrepanciesRequest, context: Any
    ) -> pb.ListDiscrepanciesResponse:
        start = int(request.page_token or 0)
        end = min(5, start + 2)
        page = [
            pb.Discrepancy(
                discrepancy_id=f"dsc_{n}",
                run_id=request.run_id,
                type=pb.DISCREPANCY_TYPE_CHANNEL_ONLY,
                side=pb.SIDE_CHANNEL,
                kind="PAYMENT",
                our_id=f"pay_{n}",
                channel_amount=Money(minor=199, currency="CNY"),
                status=pb.DISCREPANCY_STATUS_OPEN,
            )
            for n in range(start, end)
        ]
        return pb.ListDiscrepanciesResponse(discrepancies=page, next_page_token=str(end) if end < 5 else "")


@pytest.fixture
def fake_service() -> Iterator[str]:
    server = grpc.server(ThreadPoolExecutor(max_workers=2))
    reconciliation_pb2_grpc.add_ReconciliationServiceServicer_to_server(FakeService(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


def test_run_pages_every_discrepancy_into_the_report(tmp_path: Path, fake_service: str) -> None:
    done = recon("run", "--channel", "alipay", "--day", DAY, "--target", fake_service, "--out", tmp_path)
    assert done.returncode == EXIT_DISCREPANCIES, done.stderr
    document, rows = report(tmp_path, "alipay", DAY)
    assert [r["our_id"] for r in rows] == [f"pay_{n}" for n in range(5)]  # three pages
    assert {(r["type"], r["side"], r["channel_amount_minor"], r["status"]) for r in rows} == {
        ("CHANNEL_ONLY", "CHANNEL", "199", "OPEN")
    }
    assert document["run_id"] == "run_1" and document["status"] == "SUCCEEDED"
    assert [(s["type"], s["records"], s["amount"]) for s in document["summary"]] == [
        ("MATCHED", 5, "500.00"),
        ("CHANNEL_ONLY", 5, "9.99"),
    ]
    assert "5 open discrepancies" in done.stdout


def test_run_refused_prints_the_status_and_the_field(tmp_path: Path, fake_service: str) -> None:
    done = recon("run", "--channel", "paypal", "--day", DAY, "--target", fake_service, "--out", tmp_path)
    assert done.returncode == EXIT_SERVICE
    assert done.stderr == (
        f"recon: error: RunReconciliation on {fake_service}: INVALID_ARGUMENT: channel: unknown channel "
        "'paypal'; field channel: unknown channel 'paypal'\n"
    )
