"""`recon`: reconcile a channel's business day on the service, or two files offline.

    recon run --channel alipay --day 2026-11-24 [--target host:port] [--out DIR] [--limit N] [--show N]
    recon match STATEMENT INTERNAL --channel alipay --day 2026-11-24 [--format F] [--out DIR]
        [--amount-tolerance-minor N] [--amount-tolerance-bps N] [--time-tolerance-s S]
        [--cutoff-offset-s S] [--suspense-window-s S]

`run` asks the service (RunReconciliation on --target, else RECON_TARGET, else the service's
default address), then pages ListDiscrepancies for the run. `match` runs the matcher here, in a
temporary work directory, on a statement file (an Alipay GBK bill, a WeChat Pay backtick bill,
a card settlement CSV, or Parquet in the statement-line schema; the format is sniffed from the
content unless --format names it) and an internal file: Parquet in the internal-record schema,
or a UTF-8 CSV whose header names exactly these columns, in any order:

    channel,business_day,kind,our_id,reference,channel_txn_id,amount_minor,currency,fee_minor,
    status,occurred_at,batch_key

(business_day yyyy-mm-dd; amount_minor and fee_minor integers of minor units; occurred_at ISO
8601 with its zone offset, e.g. 2026-11-24T10:00:05Z; an empty field is null). Rows of other
channels than --channel are left out of both sides.

Both write <out>/recon-<channel>-<day>.json (summary and discrepancies) and .csv (one row per
outcome that is not MATCHED or MATCHED_WITH_TOLERANCE: the discrepancies and, for `match`, the
records held in SUSPENSE).

Exit codes: 0 nothing to look at, 1 discrepancies found, 2 bad input or usage (one line naming
file, line and field; never a traceback), 3 the service refused or could not be reached.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Final

import duckdb
import grpc
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from google.rpc import error_details_pb2, status_pb2
from paykit.errors import InvariantViolation
from paykit.money import CurrencyError, Money
from paykit.reconciliation.v1 import reconciliation_pb2 as pb
from paykit.reconciliation.v1 import reconciliation_pb2_grpc
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from reconciliation.domain.records import INTERNAL_RECORD_SCHEMA, STATEMENT_LINE_SCHEMA, schema_problems
from reconciliation.domain.taxonomy import DISCREPANCIES, RECONCILED, OutcomeType
from reconciliation.matching import duck
from reconciliation.matching.config import MatchConfig
from reconciliation.matching.engine import reconcile
from reconciliation.statements import PARSERS, StatementError, alipay, card, parse_statement, wechatpay

EXIT_CLEAN, EXIT_DISCREPANCIES, EXIT_USAGE, EXIT_SERVICE = 0, 1, 2, 3
ENV_TARGET: Final = "RECON_TARGET"
DEFAULT_TARGET: Final = "127.0.0.1:50057"  # the service's default RECON_GRPC_LISTEN
RUN_DEADLINE_S: Final = 900.0  # a whole day's run; the server's own limits end it sooner
PAGE_DEADLINE_S: Final = 30.0
MAX_PAGE_SIZE: Final = 500  # ListDiscrepancies' own maximum
MAX_LISTED: Final = 100_000  # discrepancies fetched by `run`
MAX_REPORTED: Final = 1_000_000  # outcome rows written by `match`; beyond, the report says truncated
CLI_MEMORY_LIMIT_MB: Final = 1_024
PARQUET: Final = "parquet"
PARQUET_MAGIC: Final = b"PAR1"
FORMAT_ALIASES: Final = {"alipay": alipay.FORMAT, "wechatpay": wechatpay.FORMAT, "card": card.FORMAT}
OUTCOME_ORDER: Final = {t.value: n for n, t in enumerate(OutcomeType)}
STAGES: Final = ("parsing", "loading", "matching", "writing")

MATCH_COLUMNS: Final = (
    "type", "side", "channel", "business_day", "kind", "line_no", "our_id", "channel_txn_id", "reference",
    "amount_minor", "amount", "currency", "fee_minor", "status", "occurred_at", "match_pass", "group_id",
    "amount_diff_minor", "fee_diff_minor",
)  # fmt: skip
RUN_COLUMNS: Final = (
    "discrepancy_id", "type", "side", "channel", "business_day", "kind", "our_id", "channel_txn_id",
    "currency", "internal_amount_minor", "channel_amount_minor", "internal_fee_minor", "channel_fee_minor",
    "status", "resolution", "created_at",
)  # fmt: skip
SHOWN_COLUMNS: Final = (
    "type",
    "side",
    "kind",
    "line_no",
    "our_id",
    "channel_txn_id",
    "amount",
    "amount_diff_minor",
)

NON_TTY_WIDTH: Final = 160  # piped or captured output: wide enough for ids, no wrapping mid-table
out = Console(highlight=False, width=None if sys.stdout.isatty() else NON_TTY_WIDTH)
err = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else NON_TTY_WIDTH)


class CliError(Exception):
    """A one-line message for the user and the exit code that goes with it."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


# -- arguments ------------------------------------------------------------------------------------


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not yyyy-mm-dd") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recon", description="Reconcile a channel's business day.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("run", "run it on the service"), ("match", "match two files here, offline")):
        command = commands.add_parser(name, help=help_text)
        if name == "match":
            command.add_argument(
                "statement", type=Path, help="channel statement file or statement-line Parquet"
            )
            command.add_argument("internal", type=Path, help="internal records: Parquet or CSV")
        command.add_argument("--channel", required=True)
        command.add_argument("--day", required=True, type=_day, help="business day, yyyy-mm-dd")
        command.add_argument("--out", type=Path, default=Path("."), help="directory for the JSON and CSV")
        command.add_argument("--show", type=int, default=20, help="discrepancies printed (default 20)")
    run = commands.choices["run"]
    run.add_argument("--target", default=os.environ.get(ENV_TARGET, DEFAULT_TARGET), help="host:port")
    run.add_argument("--limit", type=int, default=1_000, help="discrepancies fetched and written")
    run.add_argument("--timeout-s", type=float, default=RUN_DEADLINE_S)
    match = commands.choices["match"]
    match.add_argument("--format", help=f"{', '.join([*PARSERS, PARQUET])} (or alipay, wechatpay, card)")
    defaults = MatchConfig()
    for option in (
        "amount_tolerance_minor",
        "amount_tolerance_bps",
        "time_tolerance_s",
        "cutoff_offset_s",
        "suspense_window_s",
        "suspense_max_days",
        "memory_limit_mb",
    ):
        default = CLI_MEMORY_LIMIT_MB if option == "memory_limit_mb" else getattr(defaults, option)
        match.add_argument(
            f"--{option.replace('_', '-')}", type=int, default=default, help=f"default {default}"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args) if args.command == "run" else _match(args)
    except CliError as exc:
        err.print(f"recon: error: {exc}", markup=False, soft_wrap=True)
        return exc.code
    except (StatementError, duckdb.Error, pa.ArrowException) as exc:  # StatementError: file, line, field
        err.print(f"recon: error: {exc}", markup=False, soft_wrap=True)
        return EXIT_USAGE


# -- recon run ------------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    day = args.day.isoformat()
    with grpc.insecure_channel(args.target) as channel:
        stub = reconciliation_pb2_grpc.ReconciliationServiceStub(channel)  # type: ignore[no-untyped-call]
        request = pb.RunReconciliationRequest(channel=args.channel, business_day=day)
        with err.status(f"reconciling {args.channel} {day} on {args.target} …"):
            report = _call("RunReconciliation", args.target, stub.RunReconciliation, request, args.timeout_s)
        discrepancies = _list_discrepancies(stub, args.target, report.run_id, min(args.limit, MAX_LISTED))
    summary = [
        {
            "type": o.type,
            "side": pb.Side.Name(o.side).removeprefix("SIDE_"),
            "currency": o.amount.currency,
            "records": o.records,
            "amount_minor": o.amount.minor,
        }
        for o in report.outcomes
    ]
    document = {
        "source": "run",
        "target": args.target,
        "run_id": report.run_id,
        "channel": report.channel,
        "business_day": report.business_day,
        "status": pb.RunStatus.Name(report.status).removeprefix("RUN_STATUS_"),
        "started_at": _iso(report, "started_at"),
        "finished_at": _iso(report, "finished_at"),
        "statement_sha256": report.statement_sha256,
        "statement_lines": report.statement_lines,
        "internal_records": report.internal_records,
        "summary": _with_amounts(summary),
        "discrepancies_open": report.discrepancies_open,
        "discrepancies_resolved": report.discrepancies_resolved,
        "discrepancies": discrepancies,
        "error": report.error,
    }
    out.print(f"run {report.run_id}: {args.channel} {day}, {document['status']}")
    paths = _write(document, RUN_COLUMNS, args.out, args.channel, args.day)
    _show(summary, discrepancies, args.show, f"{report.discrepancies_open} open discrepancies", paths)
    if report.status == pb.RUN_STATUS_FAILED:
        raise CliError(f"the run failed: {report.error or 'no reason given'}", EXIT_SERVICE)
    found = report.discrepancies_open or any(row["type"] in DISCREPANCIES for row in summary)
    return EXIT_DISCREPANCIES if found else EXIT_CLEAN


def _call(method: str, target: str, rpc: Any, request: Any, timeout_s: float) -> Any:
    try:
        return rpc(request, timeout=timeout_s)
    except grpc.RpcError as exc:
        raise CliError(f"{method} on {target}: {_rpc_problem(exc)}", EXIT_SERVICE) from None


def _rpc_problem(exc: Any) -> str:
    """The status, its message and each field the service blamed (google.rpc.BadRequest)."""
    problem = f"{exc.code().name}: {exc.details()}"
    raw = dict(exc.trailing_metadata() or ()).get("grpc-status-details-bin")
    if raw:
        status = status_pb2.Status.FromString(raw)
        for detail in status.details:
            bad = error_details_pb2.BadRequest()
            if detail.Unpack(bad):
                problem += "".join(f"; field {v.field}: {v.description}" for v in bad.field_violations)
    return problem


def _list_discrepancies(stub: Any, target: str, run_id: str, limit: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    token = ""
    while len(rows) < limit:
        request = pb.ListDiscrepanciesRequest(
            run_id=run_id, page_size=min(MAX_PAGE_SIZE, limit - len(rows)), page_token=token
        )
        page = _call("ListDiscrepancies", target, stub.ListDiscrepancies, request, PAGE_DEADLINE_S)
        rows.extend(_discrepancy_row(d) for d in page.discrepancies)
        token = page.next_page_token
        if not token or not page.discrepancies:
            break
    return rows[:limit]


def _discrepancy_row(d: Any) -> dict[str, Any]:
    def minor(name: str) -> int | None:
        return int(getattr(d, name).minor) if d.HasField(name) else None

    currency = next(
        (getattr(d, n).currency for n in ("internal_amount", "channel_amount") if d.HasField(n)), ""
    )
    return {
        "discrepancy_id": d.discrepancy_id,
        "type": pb.DiscrepancyType.Name(d.type).removeprefix("DISCREPANCY_TYPE_"),
        "side": pb.Side.Name(d.side).removeprefix("SIDE_"),
        "channel": d.channel,
        "business_day": d.business_day,
        "kind": d.kind,
        "our_id": d.our_id,
        "channel_txn_id": d.channel_txn_id,
        "currency": currency,
        "internal_amount_minor": minor("internal_amount"),
        "channel_amount_minor": minor("channel_amount"),
        "internal_fee_minor": minor("internal_fee"),
        "channel_fee_minor": minor("channel_fee"),
        "status": pb.DiscrepancyStatus.Name(d.status).removeprefix("DISCREPANCY_STATUS_"),
        "resolution": d.resolution,
        "created_at": _iso(d, "created_at"),
        "amount": _decimal(minor("channel_amount") or minor("internal_amount"), currency),
    }


def _iso(message: Any, name: str) -> str | None:
    return getattr(message, name).ToDatetime().isoformat() + "Z" if message.HasField(name) else None


# -- recon match ----------------------------------------------------------------------------------


@dataclass
class _Stages:
    """The rich progress bar over the CLI's stages (the engine reports timings, not progress)."""

    progress: Progress
    task: Any = None
    timings_s: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        if self.task is None:
            self.task = self.progress.add_task(name, total=len(STAGES))
        self.progress.update(self.task, description=name)
        started = time.perf_counter()
        yield
        self.timings_s[name] = round(time.perf_counter() - started, 3)
        self.progress.advance(self.task)


def _match(args: argparse.Namespace) -> int:
    config = _config(args)
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with (
        tempfile.TemporaryDirectory(prefix="recon-") as tmp,
        Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as progress,
    ):
        work = Path(tmp)
        stages = _Stages(progress)
        with stages.stage("parsing"):
            statement, statement_format = _statement_file(args, work)
        with stages.stage("loading"):
            internal = _internal_file(args.internal, args.channel, work)
        with stages.stage("matching"):
            try:
                result = reconcile(args.day, statement, internal, work, config=config)
            except InvariantViolation as exc:
                raise CliError(f"the inputs break the matcher's rules: {exc}") from None
        with stages.stage("writing"):
            rows = _outcome_rows(result.outcome_files, statement, internal, work)
            summary = result.summary.to_pylist()
            document = {
                "source": "match",
                "channel": args.channel,
                "business_day": args.day.isoformat(),
                "statement": {
                    "file": str(args.statement),
                    "format": statement_format,
                    "lines": result.statement_lines,
                },
                "internal": {"file": str(args.internal), "records": result.internal_records},
                "config": asdict(config),
                "summary": _with_amounts(summary),
                "discrepancies": rows,
                "truncated": len(rows) >= MAX_REPORTED,
                "timings_s": {"stages": stages.timings_s, "engine": result.timings_s},
            }
            paths = _write(document, MATCH_COLUMNS, args.out, args.channel, args.day)
    open_count = sum(row["records"] for row in summary if row["type"] in DISCREPANCIES)
    out.print(
        f"{args.channel} {args.day}: {result.statement_lines} statement lines, "
        f"{result.internal_records} internal records"
    )
    _show(summary, rows, args.show, f"{open_count} records in discrepancies", paths)
    return EXIT_DISCREPANCIES if open_count else EXIT_CLEAN


def _config(args: argparse.Namespace) -> MatchConfig:
    names = (
        "amount_tolerance_minor",
        "amount_tolerance_bps",
        "time_tolerance_s",
        "cutoff_offset_s",
        "suspense_window_s",
        "suspense_max_days",
        "memory_limit_mb",
    )
    try:
        return MatchConfig(**{name: getattr(args, name) for name in names})
    except InvariantViolation as exc:
        raise CliError(f"a tolerance option is out of range: {exc}") from None


def _head(path: Path, size: int) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(size)
    except FileNotFoundError:
        raise CliError(f"{path}: no such file") from None
    except OSError as exc:
        raise CliError(f"{path}: cannot be read ({exc.strerror})") from None


def _sniff(head: bytes, path: Path) -> str:
    """The format from the first bytes: each channel's file opens with its own fixed text."""
    if head.startswith(PARQUET_MAGIC):
        return PARQUET
    text = head.removeprefix(b"\xef\xbb\xbf")
    # An Alipay bill or WeChat Pay header in the wrong encoding still goes to its parser,
    # which then says which encoding it expected.
    for fmt, opening in ((alipay.FORMAT, alipay.TITLE), (wechatpay.FORMAT, wechatpay.HEADER[0] + ",")):
        if any(text.startswith(opening.encode(encoding)) for encoding in ("gbk", "utf-8")):
            return fmt
    if text.startswith(b"# settlement,"):
        return card.FORMAT
    known = ", ".join([*PARSERS, PARQUET])
    raise CliError(f"{path}: cannot tell the statement format from its content; pass --format ({known})")


def _statement_file(args: argparse.Namespace, work: Path) -> tuple[Path, str]:
    """The statement as Parquet in the statement-line schema, in the work directory."""
    path: Path = args.statement
    head = _head(path, 64)
    fmt = FORMAT_ALIASES.get(args.format, args.format) if args.format else _sniff(head, path)
    if fmt != PARQUET and fmt not in PARSERS:
        raise CliError(f"--format: unknown statement format {fmt!r}; known: {', '.join([*PARSERS, PARQUET])}")
    target = work / "statement.parquet"
    if fmt == PARQUET:
        _channel_rows(path, STATEMENT_LINE_SCHEMA, args.channel, target)
        return target, fmt
    parsed = parse_statement(fmt, path.read_bytes(), str(path), args.channel, args.day)
    pq.write_table(parsed.to_arrow().select(STATEMENT_LINE_SCHEMA.names).cast(STATEMENT_LINE_SCHEMA), target)
    return target, fmt


def _internal_file(path: Path, channel: str, work: Path) -> Path:
    """The internal records as Parquet in the internal-record schema, in the work directory."""
    target = work / "internal.parquet"
    if _head(path, len(PARQUET_MAGIC)) == PARQUET_MAGIC:
        _channel_rows(path, INTERNAL_RECORD_SCHEMA, channel, target)
        return target
    table = _read_internal_csv(path)
    pq.write_table(table.filter(pc.equal(table["channel"], channel)), target)
    return target


def _channel_rows(path: Path, schema: pa.Schema, channel: str, target: Path) -> None:
    """Copies the channel's rows of a Parquet file that holds exactly the schema's columns."""
    what = "statement-line" if schema is STATEMENT_LINE_SCHEMA else "internal-record"
    try:
        problems = schema_problems(pq.read_schema(path), schema)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CliError(f"{path}: not a readable Parquet file ({exc})") from None
    if problems:
        raise CliError(f"{path}: not the {what} schema: {'; '.join(problems)}")
    con = duckdb.connect()
    try:
        con.execute(
            f"COPY (SELECT * FROM read_parquet({duck.quote(path)}) WHERE channel = ?) "
            f"TO {duck.quote(target)} (FORMAT parquet)",
            [channel],
        )
    finally:
        con.close()


def _read_internal_csv(path: Path) -> pa.Table:
    content = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    try:
        header = next(csv.reader([content.split(b"\n", 1)[0].decode("utf-8").rstrip("\r")]), [])
    except UnicodeDecodeError:
        raise CliError(f"{path} line 1: not UTF-8 (an internal CSV is UTF-8)") from None
    missing = [name for name in INTERNAL_RECORD_SCHEMA.names if name not in header]
    unknown = [name for name in header if name not in INTERNAL_RECORD_SCHEMA.names]
    if missing or unknown:
        parts = [f"missing column(s) {', '.join(missing)}"] if missing else []
        parts += [f"unknown column(s) {', '.join(unknown)}"] if unknown else []
        expected = ",".join(INTERNAL_RECORD_SCHEMA.names)
        raise CliError(f"{path} line 1: {'; '.join(parts)} (an internal CSV has the columns {expected})")
    types = {f.name: f.type for f in INTERNAL_RECORD_SCHEMA}
    options = pa_csv.ConvertOptions(column_types=types, strings_can_be_null=True, null_values=[""])
    try:
        table = pa_csv.read_csv(io.BytesIO(content), convert_options=options)
    except pa.ArrowInvalid as exc:
        raise CliError(_csv_problem(path, content, header, types, exc)) from None
    return table.select(INTERNAL_RECORD_SCHEMA.names).cast(INTERNAL_RECORD_SCHEMA)


def _csv_problem(
    path: Path, content: bytes, header: list[str], types: dict[str, pa.DataType], exc: Exception
) -> str:
    """pyarrow names the column but not the line: find the first value that does not convert."""
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as bad:
        line_no = content[: bad.start].count(b"\n") + 1
        return f"{path} line {line_no}: not UTF-8 (byte 0x{content[bad.start]:02x})"
    rows = list(csv.reader(io.StringIO(text)))
    for line_no, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            return f"{path} line {line_no}: {len(row)} fields, the header has {len(header)}"
        for name, value in zip(header, row, strict=True):
            if not value:
                continue
            try:
                pc.cast(pa.array([value]), types[name])
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as why:
                return f"{path} line {line_no}, field {name}: {value!r} is not {types[name]} ({why})"
    return f"{path}: {exc}"


def _outcome_rows(files: Sequence[Path], statement: Path, internal: Path, work: Path) -> list[dict[str, Any]]:
    """Every outcome that is not reconciled, with the input fields that help to chase it."""
    reconciled = ", ".join(f"'{t.value}'" for t in RECONCILED)
    order = " ".join(f"WHEN '{name}' THEN {n}" for name, n in OUTCOME_ORDER.items())
    listed = ", ".join(map(duck.quote, files))
    con = duck.connect(CLI_MEMORY_LIMIT_MB, 0, work / "report-spill")
    try:
        table = duck.arrow(
            con,
            f"""
            SELECT o.type, o.side, o.channel, o.business_day, o.kind, o.line_no,
                coalesce(o.our_id, s.our_id) AS our_id,
                coalesce(s.channel_txn_id, i.channel_txn_id) AS channel_txn_id,
                coalesce(s.reference, i.reference) AS reference, o.amount_minor, o.currency,
                coalesce(s.fee_minor, i.fee_minor) AS fee_minor, coalesce(s.status, i.status) AS status,
                coalesce(s.occurred_at, i.occurred_at) AS occurred_at, o.match_pass, o.group_id,
                o.amount_diff_minor, o.fee_diff_minor
            FROM read_parquet([{listed}]) o
            LEFT JOIN read_parquet({duck.quote(statement)}) s ON o.side = 'CHANNEL' AND s.channel = o.channel
                AND s.business_day = o.business_day AND s.line_no = o.line_no
            LEFT JOIN read_parquet({duck.quote(internal)}) i ON o.side = 'INTERNAL' AND i.our_id = o.our_id
            WHERE o.type NOT IN ({reconciled})
            ORDER BY CASE o.type {order} END, o.side, o.business_day, o.line_no, o.our_id
            LIMIT {MAX_REPORTED}""",
        )
    finally:
        con.close()
    rows: list[dict[str, Any]] = table.to_pylist()
    for row in rows:
        row["business_day"] = row["business_day"].isoformat()
        row["occurred_at"] = row["occurred_at"].isoformat() if row["occurred_at"] else None
        row["amount"] = _decimal(row["amount_minor"], row["currency"])
    return rows


# -- output ---------------------------------------------------------------------------------------


def _decimal(minor: int | None, currency: str) -> str | None:
    if minor is None:
        return None
    try:
        return Money(minor, currency).format()
    except (CurrencyError, ValueError):
        return None


def _with_amounts(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = sorted(
        summary, key=lambda r: (OUTCOME_ORDER.get(r["type"], len(OUTCOME_ORDER)), r["side"], r["currency"])
    )
    return [row | {"amount": _decimal(row["amount_minor"], row["currency"])} for row in rows]


def _write(
    document: dict[str, Any], columns: Sequence[str], directory: Path, channel: str, day: date
) -> tuple[Path, Path]:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        stem = directory / f"recon-{channel}-{day.isoformat()}"
        json_path, csv_path = stem.with_suffix(".json"), stem.with_suffix(".csv")
        json_path.write_text(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n", "utf-8")
        with csv_path.open("w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=list(columns), extrasaction="ignore")
            writer.writeheader()
            writer.writerows(document["discrepancies"])
    except OSError as exc:
        raise CliError(f"{directory}: cannot write the report ({exc.strerror})") from None
    return json_path, csv_path


def _show(
    summary: list[dict[str, Any]],
    rows: list[dict[str, Any]],
    limit: int,
    verdict: str,
    paths: tuple[Path, Path],
) -> None:
    table = Table(title="outcomes")
    for name in ("type", "side", "currency", "records", "amount"):
        table.add_column(name, justify="right" if name in ("records", "amount") else "left")
    for row in _with_amounts(summary):
        table.add_row(row["type"], row["side"], row["currency"], str(row["records"]), row["amount"] or "")
    out.print(table)
    if rows:
        shown = Table(title=f"not reconciled (first {min(limit, len(rows))} of {len(rows)})")
        for name in SHOWN_COLUMNS:
            shown.add_column(name)
        for row in rows[:limit]:
            shown.add_row(*("" if row.get(name) is None else str(row[name]) for name in SHOWN_COLUMNS))
        out.print(shown)
    out.print(f"{verdict}; report: {paths[0]} {paths[1]}", soft_wrap=True)


if __name__ == "__main__":
    sys.exit(main())
