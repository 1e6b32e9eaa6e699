"""The protobuf contracts change compatibly: `buf breaking` against the released baseline.

protos/baseline/v1.binpb is a buf image of the released schemas (`make
proto-baseline`, refreshed only after a release); protos/buf.yaml sets the
breaking rules (FILE, reasons in docs/events.md, "Schema changes"). This module:

- runs exactly `buf breaking protos --against protos/baseline/v1.binpb` (what
  `make proto-breaking` runs) and requires it to pass;
- proves the check bites: copies of protos/ with a deleted field, a changed
  field number, a changed field type or a renamed event message must each be
  reported, with the buf rule that caught them; an additive change must pass.

buf is the one deploy/install-deps.sh builds into .run/tools/bin (built here
through `install-deps.sh buf` when missing, never skipped). Run with -s to see
the summary line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

REPO_ROOT = Path(__file__).resolve().parents[2]
PROTOS = REPO_ROOT / "protos"
BASELINE = PROTOS / "baseline" / "v1.binpb"
BUF = REPO_ROOT / ".run" / "tools" / "bin" / "buf"
# buf's exit codes: 0 no finding, 100 breaking changes found; anything else is an error
# (a file that does not compile, a bad config), which must never pass for "breaking".
BUF_OK = 0
BUF_FINDINGS = 100
BUF_TIMEOUT_S = 120

# Building buf from source (only when .run/tools/bin has none) takes minutes.
pytestmark = pytest.mark.timeout(1800)


@dataclass(frozen=True)
class Finding:
    path: str
    rule: str
    message: str


@dataclass(frozen=True)
class BreakingResult:
    returncode: int
    findings: list[Finding]
    stderr: str


@pytest.fixture(scope="module")
def buf() -> Path:
    if not os.access(BUF, os.X_OK):
        print(f"\nbuf: not in {BUF.parent}; running deploy/install-deps.sh buf")
        subprocess.run(["bash", str(REPO_ROOT / "deploy" / "install-deps.sh"), "buf"], check=True)
    assert os.access(BUF, os.X_OK), f"deploy/install-deps.sh buf did not install {BUF}"
    return BUF


def run_breaking(buf: Path, protos: str | Path) -> BreakingResult:
    """`buf breaking <protos> --against protos/baseline/v1.binpb`, findings as JSON lines."""
    proc = subprocess.run(
        [
            str(buf),
            "breaking",
            str(protos),
            "--against",
            str(BASELINE.relative_to(REPO_ROOT)),
            "--error-format",
            "json",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=BUF_TIMEOUT_S,
        check=False,
    )
    assert proc.returncode in (BUF_OK, BUF_FINDINGS), (
        f"buf breaking failed to run (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}"
    )
    findings = []
    for line in proc.stdout.splitlines():
        if line.strip():
            item = json.loads(line)
            findings.append(Finding(item["path"], item["type"], item["message"]))
    return BreakingResult(proc.returncode, findings, proc.stderr)


def module_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.proto"))


def baseline_files() -> list[str]:
    """The files of our module in the baseline image (an Image parses as a FileDescriptorSet)."""
    image = descriptor_pb2.FileDescriptorSet()
    image.ParseFromString(BASELINE.read_bytes())
    return sorted(f.name for f in image.file if not f.name.startswith("google/protobuf/"))


# -- editing a copy of protos/ -------------------------------------------------------


@pytest.fixture
def protos_copy(tmp_path: Path) -> Path:
    """protos/ (buf.yaml and every .proto; not the baseline) copied to a temporary directory."""
    copy = tmp_path / "protos"
    shutil.copytree(PROTOS, copy, ignore=shutil.ignore_patterns("baseline"))
    return copy


def edit_message(protos: Path, file: str, message: str, old: str, new: str) -> None:
    """Replace `old` by `new`, once, inside `message <message> { ... }` of `file`."""
    path = protos / "paykit" / "events" / "v1" / file
    text = path.read_text()
    block = re.search(rf"^message {message} \{{\n.*?^\}}\n", text, re.MULTILINE | re.DOTALL)
    assert block is not None, f"message {message} not found in {file}"
    body = block.group(0)
    assert body.count(old) == 1, f"{old!r} is not exactly once in message {message}"
    path.write_text(text[: block.start()] + body.replace(old, new) + text[block.end() :])


def rename_message(protos: Path, file: str, old: str, new: str) -> None:
    path = protos / "paykit" / "events" / "v1" / file
    text = path.read_text()
    assert text.count(f"message {old} {{") == 1
    path.write_text(text.replace(f"message {old} {{", f"message {new} {{"))


def assert_reported(result: BreakingResult, rule: str, *words: str) -> None:
    for finding in result.findings:
        print(f"  {finding.rule}: {finding.path}: {finding.message}")
    assert result.returncode == BUF_FINDINGS, f"buf reported no breaking change (exit {result.returncode})"
    matching = [f for f in result.findings if f.rule == rule and all(w in f.message for w in words)]
    assert matching, f"no {rule} finding naming {words}; got {result.findings}"


# -- the real check --------------------------------------------------------------------


def test_baseline_is_committed_and_covers_the_module() -> None:
    assert BASELINE.is_file(), f"{BASELINE} missing: run `make proto-baseline` and commit it"
    released = baseline_files()
    assert released, "the baseline image holds none of our files"
    # Files may be added after a release, never removed (FILE_NO_DELETE checks it too).
    missing = sorted(set(released) - set(module_files(PROTOS)))
    assert not missing, f"files in the baseline but gone from protos/: {missing}"


def test_current_protos_have_no_breaking_change(buf: Path) -> None:
    result = run_breaking(buf, "protos")
    for finding in result.findings:
        print(f"  {finding.rule}: {finding.path}: {finding.message}")
    assert result.returncode == BUF_OK and not result.findings, (
        "protos/ breaks the released schemas (docs/events.md, 'Schema changes'): "
        + "; ".join(f"{f.rule} {f.path}: {f.message}" for f in result.findings)
    )
    checked = len(module_files(PROTOS))
    print(
        f"\nbuf breaking: {checked} files checked against baseline, {len(result.findings)} breaking changes"
    )


# -- the check bites -------------------------------------------------------------------


def test_deleting_a_field_is_breaking(buf: Path, protos_copy: Path) -> None:
    edit_message(
        protos_copy, "payment_events.proto", "PaymentSucceeded", "  string channel_trade_no = 6;\n", ""
    )
    assert_reported(
        run_breaking(buf, protos_copy), "FIELD_NO_DELETE", '"channel_trade_no"', "PaymentSucceeded"
    )


def test_deleting_a_field_is_breaking_even_when_its_number_is_reserved(buf: Path, protos_copy: Path) -> None:
    # Within v1 a field is deprecated, not deleted (docs/events.md); a deliberate
    # deletion also refreshes the baseline in review.
    edit_message(
        protos_copy,
        "payment_events.proto",
        "PaymentSucceeded",
        "  string channel_trade_no = 6;\n",
        '  reserved 6;\n  reserved "channel_trade_no";\n',
    )
    assert_reported(run_breaking(buf, protos_copy), "FIELD_NO_DELETE", '"channel_trade_no"')


@pytest.mark.parametrize(
    ("old", "new", "rule", "words"),
    [
        # A new number: to a reader the old field vanished (and the new one is unknown).
        ("  string failure_code = 6;", "  string failure_code = 16;", "FIELD_NO_DELETE", ['"failure_code"']),
        # Two fields swapping numbers: the bytes still parse, into the wrong fields.
        (
            "  string order_id = 2;\n  string merchant_id = 3;",
            "  string order_id = 3;\n  string merchant_id = 2;",
            "FIELD_SAME_NAME",
            ['"order_id"', '"merchant_id"'],
        ),
    ],
    ids=["renumbered", "swapped"],
)
def test_changing_a_field_number_is_breaking(
    buf: Path, protos_copy: Path, old: str, new: str, rule: str, words: list[str]
) -> None:
    edit_message(protos_copy, "payment_events.proto", "PaymentFailed", old, new)
    assert_reported(run_breaking(buf, protos_copy), rule, "PaymentFailed", *words)


@pytest.mark.parametrize(
    ("file", "message", "old", "new"),
    [
        ("payment_events.proto", "PaymentFlagged", "  string reason = 3;", "  int64 reason = 3;"),
        # Wire-compatible, still a break for generated code (WIRE would let it through).
        ("notification_events.proto", "NotificationDead", "  int32 attempts = 7;", "  int64 attempts = 7;"),
        ("order_events.proto", "OrderPaid", "  paykit.common.v1.Money amount = 5;", "  string amount = 5;"),
    ],
    ids=["string-to-int64", "int32-to-int64", "message-to-string"],
)
def test_changing_a_field_type_is_breaking(
    buf: Path, protos_copy: Path, file: str, message: str, old: str, new: str
) -> None:
    edit_message(protos_copy, file, message, old, new)
    assert_reported(run_breaking(buf, protos_copy), "FIELD_SAME_TYPE", message, "changed type")


def test_renaming_an_event_message_is_breaking(buf: Path, protos_copy: Path) -> None:
    # The payload's Any type URL is the message's full name: consumers could not unpack it.
    rename_message(protos_copy, "order_events.proto", "OrderClosed", "OrderCancelled")
    assert_reported(run_breaking(buf, protos_copy), "MESSAGE_NO_DELETE", '"OrderClosed"')


def test_an_additive_change_passes(buf: Path, protos_copy: Path) -> None:
    edit_message(
        protos_copy,
        "payment_events.proto",
        "PaymentSucceeded",
        "  string auto_refund_id = 9;\n",
        "  string auto_refund_id = 9;\n  // The payer's account at the channel, when it tells.\n"
        "  string payer_account = 10;\n",
    )
    events = protos_copy / "paykit" / "events" / "v1" / "payment_events.proto"
    events.write_text(
        events.read_text()
        + "\n// payment.disputed: a new event type on payment.events.\n"
        + "message PaymentDisputed {\n  string payment_id = 1;\n  string order_id = 2;\n"
        + "  paykit.common.v1.Money amount = 3;\n}\n"
    )
    result = run_breaking(buf, protos_copy)
    assert result.returncode == BUF_OK and not result.findings, f"an additive change was refused: {result}"
