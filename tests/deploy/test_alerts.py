"""The Prometheus alert rules (deploy/prometheus/alerts.yml), checked offline with promtool.

- promtool is the one deploy/install-deps.sh builds into .run/tools/bin
  (installed here through `install-deps.sh promtool` when missing, never skipped);
- `promtool check rules` accepts the file and rejects a broken copy;
- `promtool test rules` runs tests/deploy/alerts_test.yml: simulated series
  (one payment stuck PROCESSING past the threshold, an outbox that stops, ...)
  fire the right alerts with the right labels, and quiet series fire none; the
  same tests fail against a rules file whose StuckPayments threshold is wrong;
- every paykit_ metric an alert uses is one the code declares, Prometheus loads
  the file (prometheus.yml rule_files, mounted by docker-compose.yml) and
  `promtool check config` accepts prometheus.yml.

Run with -s to see one summary line per check.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMTOOL = REPO_ROOT / ".run" / "tools" / "bin" / "promtool"
RULES_FILE = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
RULES_TESTS = Path(__file__).resolve().parent / "alerts_test.yml"
PROMETHEUS_FILE = REPO_ROOT / "deploy" / "prometheus.yml"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
RULES_IN_CONTAINER = "/etc/prometheus/alerts.yml"
SOURCE_DIRS = (*sorted((REPO_ROOT / "libs").glob("*/src")), *sorted((REPO_ROOT / "services").glob("*/src")))
# What the spec asks an operator to be woken for; each must exist with a severity and a summary.
REQUIRED_ALERTS = {
    "StuckPayments",
    "OutboxEventsNotPublished",
    "ConsumerLagHigh",
    "WebhookDeliveriesDead",
    "LedgerTrialBalanceBroken",
    "GrpcErrorRateHigh",
}
SEVERITIES = {"critical", "warning"}
HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")

# Building promtool from source (only when .run/tools/bin has none) takes minutes.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def promtool() -> Path:
    if not os.access(PROMTOOL, os.X_OK):
        print(f"\npromtool: not in {PROMTOOL.parent}; running deploy/install-deps.sh promtool")
        subprocess.run(["bash", str(REPO_ROOT / "deploy" / "install-deps.sh"), "promtool"], check=True)
    assert os.access(PROMTOOL, os.X_OK), f"deploy/install-deps.sh promtool did not install {PROMTOOL}"
    return PROMTOOL


def run_promtool(promtool: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool), *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )


def rules() -> list[dict[str, object]]:
    doc = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    return [rule for group in doc["groups"] for rule in group["rules"]]


def test_promtool_check_rules_accepts_the_rules_file(promtool: Path) -> None:
    proc = run_promtool(promtool, "check", "rules", str(RULES_FILE))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = re.search(r"SUCCESS: (\d+) rules found", proc.stdout)
    assert found, proc.stdout
    print(
        f"\nalerts: promtool check rules: {found.group(1)} rules in {RULES_FILE.relative_to(REPO_ROOT)} valid"
    )


@pytest.mark.parametrize(
    ("case", "old", "new", "expected"),
    [
        ("unbalanced parenthesis", "max by (channel, state) (", "max by (channel, state (", "parse error"),
        ("bad duration", "for: 10m", "for: ten minutes", "not a valid duration"),
    ],
)
def test_promtool_check_rules_rejects_a_broken_rule(
    promtool: Path, tmp_path: Path, case: str, old: str, new: str, expected: str
) -> None:
    text = RULES_FILE.read_text(encoding="utf-8")
    assert old in text, f"{case}: {old!r} not in the rules file"
    broken = tmp_path / "alerts.yml"
    broken.write_text(text.replace(old, new, 1), encoding="utf-8")
    proc = run_promtool(promtool, "check", "rules", str(broken))
    assert proc.returncode != 0, f"{case}: promtool accepted it:\n{proc.stdout}"
    output = proc.stdout + proc.stderr
    assert expected in output, output
    reason = output.strip().splitlines()[-1].split("alerts.yml: ", 1)[-1]
    print(f"\nalerts: promtool check rules rejects a rule with {case}: {reason}")


def test_promtool_unit_tests_fire_the_right_alerts(promtool: Path) -> None:
    """StuckPayments fires with its labels after 10 minutes of one stuck payment, not at 0; the others too."""
    proc = run_promtool(promtool, "test", "rules", RULES_TESTS.name, cwd=RULES_TESTS.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    tests = yaml.safe_load(RULES_TESTS.read_text(encoding="utf-8"))["tests"]
    checks = sum(len(t.get("alert_rule_test", [])) for t in tests)
    fired = {c["alertname"] for t in tests for c in t.get("alert_rule_test", []) if c.get("exp_alerts")}
    assert fired >= REQUIRED_ALERTS, f"no unit test fires {REQUIRED_ALERTS - fired}"
    print(
        f"\nalerts: promtool test rules: {len(tests)} scenarios, {checks} evaluations passed "
        f"(StuckPayments fires for a payment stuck PROCESSING with severity/channel/state labels, "
        f"stays silent while the gauge is 0)"
    )


def test_promtool_unit_tests_fail_against_a_wrong_threshold(promtool: Path, tmp_path: Path) -> None:
    """The unit tests can fail: StuckPayments that waits for 5 stuck payments misses the one."""
    text = RULES_FILE.read_text(encoding="utf-8")
    wrong = "max by (channel, state) (paykit_payments_stuck) > 5"
    (tmp_path / "alerts.yml").write_text(
        text.replace("max by (channel, state) (paykit_payments_stuck) > 0", wrong), encoding="utf-8"
    )
    tests = RULES_TESTS.read_text(encoding="utf-8").replace(
        "../../deploy/prometheus/alerts.yml", "alerts.yml"
    )
    (tmp_path / "alerts_test.yml").write_text(tests, encoding="utf-8")
    proc = run_promtool(promtool, "test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert proc.returncode != 0, proc.stdout
    assert "StuckPayments" in proc.stdout + proc.stderr
    print("\nalerts: the unit tests fail against StuckPayments with threshold > 5 (one stuck payment missed)")


def test_every_required_alert_has_a_severity_and_a_summary() -> None:
    by_name = {str(rule["alert"]): rule for rule in rules() if "alert" in rule}
    assert set(by_name) >= REQUIRED_ALERTS, f"missing alerts: {REQUIRED_ALERTS - set(by_name)}"
    for name, rule in by_name.items():
        labels = rule.get("labels") or {}
        annotations = rule.get("annotations") or {}
        assert isinstance(labels, dict) and labels.get("severity") in SEVERITIES, name
        assert isinstance(annotations, dict) and annotations.get("summary"), name
        assert annotations.get("description"), name
    print(f"\nalerts: {len(by_name)} alerts, each with a severity label, a summary and a description")


def declared_metric_names() -> set[str]:
    """Every "paykit_..." string literal in the libraries' and services' sources."""
    names: set[str] = set()
    for root in SOURCE_DIRS:
        for path in root.rglob("*.py"):
            if path.name.endswith("_pb2.py"):
                continue
            names.update(re.findall(r'"(paykit_[a-z0-9_]+)"', path.read_text(encoding="utf-8")))
    return names


def test_alerts_use_only_metrics_the_code_exports() -> None:
    declared = declared_metric_names()
    used: set[str] = set()
    for rule in rules():
        for name in re.findall(r"\bpaykit_[a-z0-9_]+", str(rule["expr"])):
            histogram = (name.removesuffix(s) for s in HISTOGRAM_SUFFIXES if name.endswith(s))
            used.add(next((h for h in histogram if h in declared), name))
    assert used, "no alert uses a paykit_ metric"
    assert used <= declared, f"alerts use metrics no code declares: {sorted(used - declared)}"
    print(f"\nalerts: the {len(used)} paykit_ metrics the alerts use are all declared in the code")


def test_prometheus_loads_the_rules_file_compose_mounts(promtool: Path, tmp_path: Path) -> None:
    prometheus = yaml.safe_load(PROMETHEUS_FILE.read_text(encoding="utf-8"))
    assert RULES_IN_CONTAINER in prometheus.get("rule_files", []), "prometheus.yml does not load the alerts"
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    mounts = compose["services"]["prometheus"].get("volumes", [])
    assert f"./deploy/prometheus/alerts.yml:{RULES_IN_CONTAINER}:ro" in mounts, mounts
    # promtool reads rule_files from this machine: point them at the repository's file.
    local = tmp_path / "prometheus.yml"
    local.write_text(
        PROMETHEUS_FILE.read_text(encoding="utf-8").replace(RULES_IN_CONTAINER, str(RULES_FILE)),
        encoding="utf-8",
    )
    proc = run_promtool(promtool, "check", "config", str(local))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(
        f"\nalerts: prometheus.yml loads {RULES_IN_CONTAINER} (compose mounts it); promtool check config ok"
    )
