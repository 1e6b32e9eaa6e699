"""Offline checks of the Helm charts under charts/ (`make helm-check`).

Nothing here needs a cluster or the network:

- helm is the one deploy/install-deps.sh builds into .run/tools/bin (installed
  here through `install-deps.sh helm` when missing, never skipped);
- the charts are copied to a temporary directory and their file:// dependencies
  built there with `helm dependency build` (paykit-lib into each service chart,
  then the service charts into the umbrella), so the check always renders the
  sources as they are and writes nothing into the working tree;
- every chart is linted with --strict, the umbrella and each service chart are
  rendered with `helm template`, and every manifest is validated against the
  strict Kubernetes JSON schemas that the kubernetes-validate package ships
  (K8S_VERSION) - the prometheus-operator kinds against the schemas vendored in
  charts/schemas/.

Run with -s to see one summary line per check.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHARTS_DIR = REPO_ROOT / "charts"
SCHEMAS_DIR = CHARTS_DIR / "schemas"
HELM = REPO_ROOT / ".run" / "tools" / "bin" / "helm"
K8S_VERSION = "1.33"
NAMESPACE = "payments"
RELEASE = "pk"

LIBRARY = "paykit-lib"
UMBRELLA = "paykit"
GRPC_SERVICES = ("order", "payment-core", "channel-gateway", "accounting", "notification", "reconciliation")
SERVICE_CHARTS = (*GRPC_SERVICES, "channel-simulator")
ALL_CHARTS = (LIBRARY, *SERVICE_CHARTS, UMBRELLA)
# The env var each service reads its database URL from (kept in the Secret).
DATABASE_KEYS = {
    "order": "ORDER_DATABASE_URL",
    "payment-core": "PAYMENT_DATABASE_URL",
    "channel-gateway": "GATEWAY_DATABASE_URL",
    "accounting": "ACCOUNTING_DATABASE_URL",
    "notification": "NOTIFICATION_DATABASE_URL",
    "reconciliation": "RECON_DATABASE_URL",
}
CRD_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor-monitoring-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule-monitoring-v1.json",
}
HOOK_EVENTS = {"pre-install", "pre-upgrade"}
APP_UID = 10001

# Building helm from source (only when .run/tools/bin has none) takes minutes.
pytestmark = pytest.mark.timeout(1800)

Manifest = dict[str, Any]


# -- helm -------------------------------------------------------------------


@pytest.fixture(scope="module")
def helm() -> Path:
    if not os.access(HELM, os.X_OK):
        print(f"\nhelm: not in {HELM.parent}; running deploy/install-deps.sh helm")
        subprocess.run(["bash", str(REPO_ROOT / "deploy" / "install-deps.sh"), "helm"], check=True)
    assert os.access(HELM, os.X_OK), f"deploy/install-deps.sh helm did not install {HELM}"
    return HELM


@pytest.fixture(scope="module")
def helm_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A private helm home: no repositories, no cache, no kubeconfig from the machine."""
    home = tmp_path_factory.mktemp("helm-home")
    return {
        **os.environ,
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
        "KUBECONFIG": str(home / "no-kubeconfig"),
    }


def run_helm(
    helm: Path, env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(helm), *args], env=env, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def charts(helm: Path, helm_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """charts/ copied, with every file:// dependency built (offline: nothing but local charts)."""
    root = tmp_path_factory.mktemp("charts") / "charts"
    shutil.copytree(CHARTS_DIR, root, ignore=shutil.ignore_patterns("*.tgz", "Chart.lock"))
    # paykit-lib into each service chart first: the umbrella packages the service charts as they are.
    for chart in (*SERVICE_CHARTS, UMBRELLA):
        run_helm(helm, helm_env, "dependency", "build", str(root / chart))
    packaged = sorted(p.name for p in (root / UMBRELLA / "charts").glob("*.tgz"))
    assert packaged == sorted(f"{c}-0.1.0.tgz" for c in SERVICE_CHARTS), packaged
    return root


def render(helm: Path, env: dict[str, str], chart: Path, *args: str) -> list[Manifest]:
    out = run_helm(
        helm,
        env,
        "template",
        RELEASE,
        str(chart),
        "--namespace",
        NAMESPACE,
        "--kube-version",
        K8S_VERSION,
        *args,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


# -- scenarios --------------------------------------------------------------

FULL_VALUES: dict[str, Any] = {
    "global": {"existingSecret": "paykit-secrets", "monitoring": {"enabled": True}},
    **{name: {"autoscaling": {"enabled": True}} for name in GRPC_SERVICES},
    "topics": {"enabled": True},
}
# One service-level alert through the library's prometheusRule.rules hook.
FULL_VALUES["order"]["prometheusRule"] = {
    "enabled": True,
    "rules": [
        {
            "alert": "OrderExpiryBacklog",
            "expr": "paykit_order_expiry_backlog > 1000",
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {"summary": "{{ $labels.instance }}: expired orders are not being closed"},
        }
    ],
}


@pytest.fixture(scope="module")
def full_values_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("values") / "full.yaml"
    path.write_text(yaml.safe_dump(FULL_VALUES, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def default_render(helm: Path, helm_env: dict[str, str], charts: Path) -> list[Manifest]:
    return render(helm, helm_env, charts / UMBRELLA)


@pytest.fixture(scope="module")
def full_render(helm: Path, helm_env: dict[str, str], charts: Path, full_values_file: Path) -> list[Manifest]:
    """Monitoring and autoscaling on, secrets from an existing Secret, the topics Job."""
    return render(helm, helm_env, charts / UMBRELLA, "-f", str(full_values_file))


# -- validation ---------------------------------------------------------------


def crd_validator(manifest: Manifest) -> jsonschema.protocols.Validator | None:
    name = CRD_SCHEMAS.get((manifest.get("apiVersion"), manifest.get("kind")))
    if name is None:
        return None
    schema = json.loads((SCHEMAS_DIR / name).read_text())
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def validate(manifest: Manifest) -> str:
    """Raises on an invalid manifest (or one no schema knows); returns what it was checked against."""
    validator = crd_validator(manifest)
    if validator is not None:
        validator.validate(manifest)
        return "charts/schemas"
    return f"kubernetes {kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)}"


def describe(manifest: Manifest) -> str:
    return f"{manifest.get('kind')}/{manifest.get('metadata', {}).get('name')}"


# -- helpers for the assertions ---------------------------------------------


def of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def chart_of(manifest: Manifest) -> str:
    return str(manifest["metadata"]["labels"]["app.kubernetes.io/name"])


def secret_values(manifests: list[Manifest]) -> dict[str, str]:
    """Every value of every Secret, decoded: "<secret>/<key>" -> value."""
    values = {}
    for secret in of_kind(manifests, "Secret").values():
        for key, encoded in (secret.get("data") or {}).items():
            values[f"{secret['metadata']['name']}/{key}"] = base64.b64decode(encoded).decode()
        for key, plain in (secret.get("stringData") or {}).items():
            values[f"{secret['metadata']['name']}/{key}"] = plain
    return values


def assert_no_secret_in_configmaps(manifests: list[Manifest]) -> int:
    values = secret_values(manifests)
    assert values, "no Secret rendered"
    for configmap in of_kind(manifests, "ConfigMap").values():
        data = configmap.get("data") or {}
        for where, value in values.items():
            for key, text in data.items():
                assert value not in str(text), (
                    f"{where} appears in ConfigMap {configmap['metadata']['name']}: {key}"
                )
        assert not any("DATABASE_URL" in key or "SECRET" in key for key in data), (
            f"a secret-looking key in ConfigMap {configmap['metadata']['name']}: {sorted(data)}"
        )
    return len(values)


def pod_specs(manifests: list[Manifest]) -> Iterator[tuple[Manifest, dict[str, Any]]]:
    for m in manifests:
        if m["kind"] in ("Deployment", "Job"):
            yield m, m["spec"]["template"]["spec"]


def assert_hardened(owner: Manifest, pod: dict[str, Any]) -> None:
    name = describe(owner)
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == APP_UID, name
    assert pod["automountServiceAccountToken"] is False, name
    for container in pod["containers"]:
        csc = container["securityContext"]
        assert csc["runAsNonRoot"] is True and csc["runAsUser"] == APP_UID, name
        assert csc["readOnlyRootFilesystem"] is True, name
        assert csc["allowPrivilegeEscalation"] is False, name
        assert csc["capabilities"]["drop"] == ["ALL"], name
        assert not csc["capabilities"].get("add"), name
        resources = container["resources"]
        for part in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(resources.get(part, {})), f"{name}: resources.{part}"
        # The read-only root filesystem still needs a writable /tmp.
        assert any(v["mountPath"] == "/tmp" for v in container.get("volumeMounts", [])), name


def hook_events(manifest: Manifest) -> set[str]:
    annotations = manifest["metadata"].get("annotations") or {}
    return set(filter(None, annotations.get("helm.sh/hook", "").split(",")))


def secret_refs(pod: dict[str, Any]) -> set[tuple[str, str]]:
    refs = set()
    for container in pod["containers"]:
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                refs.add((ref["name"], ref["key"]))
    return refs


def assert_deployments(manifests: list[Manifest], hpa_enabled: bool) -> None:
    deployments = {chart_of(d): d for d in of_kind(manifests, "Deployment").values()}
    assert sorted(deployments) == sorted(SERVICE_CHARTS)
    services = {chart_of(s): s for s in of_kind(manifests, "Service").values()}
    for chart, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert_hardened(deployment, pod)
        (container,) = pod["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        service_ports = {p["name"]: p for p in services[chart]["spec"]["ports"]}
        if chart in GRPC_SERVICES:
            # Kubernetes-native gRPC health checks (grpc.health.v1) on the serving port.
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert container[probe]["grpc"]["port"] == ports["grpc"], f"{chart} {probe}"
            assert {"grpc", "metrics"} <= set(service_ports), chart
            assert service_ports["grpc"]["appProtocol"] == "grpc", chart
            assert ports["metrics"] == 9464, chart
            config = container["envFrom"][0]["configMapRef"]["name"]
            env = of_kind(manifests, "ConfigMap")[config]["data"]
            assert env["METRICS_PORT"] == "9464", chart
            assert env["METRICS_HOST"] == "0.0.0.0", f"{chart}: metrics bind loopback unless told otherwise"
            assert any(
                v == f"0.0.0.0:{ports['grpc']}" for k, v in env.items() if k.endswith("_GRPC_LISTEN")
            ), chart
            assert env["MIGRATE_ON_START"] == "false", f"{chart}: the migration Job runs the migrations"
            assert DATABASE_KEYS[chart] in {key for _, key in secret_refs(pod)}, chart
        else:
            # The simulator is an HTTP sandbox: it has no gRPC server to probe.
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert container[probe]["httpGet"]["port"] == "http", f"{chart} {probe}"
        if hpa_enabled and chart in GRPC_SERVICES:
            assert "replicas" not in deployment["spec"], f"{chart}: replicas belong to the HPA"
        else:
            assert deployment["spec"]["replicas"] >= 1, chart


def assert_migration_jobs(manifests: list[Manifest], existing_secret: str | None) -> None:
    jobs = {chart_of(j): j for j in of_kind(manifests, "Job").values() if "migrate" in j["metadata"]["name"]}
    assert sorted(jobs) == sorted(GRPC_SERVICES), "one migration Job per database-backed service"
    secrets_by_name = of_kind(manifests, "Secret")
    for chart, job in jobs.items():
        assert hook_events(job) >= HOOK_EVENTS, f"{chart}: {job['metadata'].get('annotations')}"
        pod = job["spec"]["template"]["spec"]
        assert_hardened(job, pod)
        (container,) = pod["containers"]
        assert container["args"] == ["migrate"], chart
        assert container["command"][:2] == ["python", "-m"], chart
        refs = secret_refs(pod)
        (secret_name,) = {name for name, _ in refs}
        assert DATABASE_KEYS[chart] in {key for _, key in refs}, chart
        if existing_secret:
            assert secret_name == existing_secret, chart
        else:
            # pre-install runs before the release's own Secret exists: the Job reads a hook
            # Secret created just before it.
            hook_secret = secrets_by_name[secret_name]
            assert hook_events(hook_secret) >= HOOK_EVENTS, secret_name
            weight = int(hook_secret["metadata"]["annotations"]["helm.sh/hook-weight"])
            assert weight < int(job["metadata"]["annotations"]["helm.sh/hook-weight"]), secret_name


# -- the checks -----------------------------------------------------------------


def test_helm_lint_strict(helm: Path, helm_env: dict[str, str], charts: Path, full_values_file: Path) -> None:
    runs = [(chart, ()) for chart in ALL_CHARTS] + [(UMBRELLA, ("-f", str(full_values_file)))]
    failures = []
    for chart, extra in runs:
        proc = run_helm(helm, helm_env, "lint", "--strict", str(charts / chart), *extra, check=False)
        if proc.returncode != 0:
            failures.append(f"{chart} {' '.join(extra)}:\n{proc.stdout}{proc.stderr}")
    print(
        f"\nhelm lint --strict: {len(ALL_CHARTS)} charts (+ umbrella with monitoring/autoscaling), "
        f"{len(failures)} failures"
    )
    assert not failures, "\n".join(failures)


def test_rendered_manifests_validate(
    helm: Path,
    helm_env: dict[str, str],
    charts: Path,
    default_render: list[Manifest],
    full_render: list[Manifest],
) -> None:
    renders = {
        "umbrella defaults": default_render,
        "umbrella monitoring+autoscaling+existingSecret": full_render,
    }
    for chart in SERVICE_CHARTS:
        renders[f"{chart} alone"] = render(helm, helm_env, charts / chart)
    checked: Counter[str] = Counter()
    errors = []
    for scenario, manifests in renders.items():
        assert manifests, scenario
        for manifest in manifests:
            try:
                checked[validate(manifest)] += 1
            except (jsonschema.ValidationError, kubernetes_validate.utils.SchemaNotFoundError) as exc:
                path = ".".join(str(p) for p in getattr(exc, "path", []))
                errors.append(f"{scenario}: {describe(manifest)}: {path}: {getattr(exc, 'message', exc)}")
    k8s = sum(n for against, n in checked.items() if against.startswith("kubernetes"))
    print(
        f"\nkubernetes-validate: {k8s} manifests valid against {K8S_VERSION} (strict schemas), "
        f"{checked['charts/schemas']} ServiceMonitor/PrometheusRule valid against charts/schemas/, "
        f"{len(renders)} renders, {len(errors)} invalid"
    )
    assert not errors, "\n".join(errors)


def test_default_render(default_render: list[Manifest]) -> None:
    kinds = Counter(m["kind"] for m in default_render)
    assert_deployments(default_render, hpa_enabled=False)
    assert_migration_jobs(default_render, existing_secret=None)
    pdbs = {chart_of(p) for p in of_kind(default_render, "PodDisruptionBudget").values()}
    assert pdbs == set(GRPC_SERVICES), (
        "a PDB for every replicated service (the simulator is a single replica)"
    )
    assert (
        not kinds["HorizontalPodAutoscaler"] and not kinds["ServiceMonitor"] and not kinds["PrometheusRule"]
    )
    # No Secret is referenced that the chart does not make.
    secret_names = set(of_kind(default_render, "Secret"))
    for owner, pod in pod_specs(default_render):
        for name, key in secret_refs(pod):
            assert name in secret_names, f"{describe(owner)} reads {key} from missing Secret {name}"
            assert key in of_kind(default_render, "Secret")[name]["data"], f"{describe(owner)}: {name}/{key}"
    n = assert_no_secret_in_configmaps(default_render)
    counts = ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items()))
    print(
        f"\ndefaults: {len(default_render)} manifests ({counts}); {len(GRPC_SERVICES)} Deployments "
        f"with gRPC probes + channel-simulator with HTTP probes, all non-root uid {APP_UID}, read-only "
        f"root fs, ALL caps dropped, requests+limits; {len(GRPC_SERVICES)} migration Jobs as "
        f"pre-install,pre-upgrade hooks; {n} secret values, none in a ConfigMap"
    )


def test_monitoring_autoscaling_existing_secret(full_render: list[Manifest]) -> None:
    kinds = Counter(m["kind"] for m in full_render)
    assert_deployments(full_render, hpa_enabled=True)
    assert_migration_jobs(full_render, existing_secret="paykit-secrets")
    assert not kinds["Secret"], "with an existingSecret no chart makes a Secret"
    for owner, pod in pod_specs(full_render):
        for name, _ in secret_refs(pod):
            assert name == "paykit-secrets", describe(owner)

    deployments = of_kind(full_render, "Deployment")
    hpas = of_kind(full_render, "HorizontalPodAutoscaler")
    assert {chart_of(h) for h in hpas.values()} == set(GRPC_SERVICES)
    for hpa in hpas.values():
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert {chart_of(p) for p in of_kind(full_render, "PodDisruptionBudget").values()} == set(GRPC_SERVICES)

    services = of_kind(full_render, "Service")
    monitors = of_kind(full_render, "ServiceMonitor")
    assert {chart_of(m) for m in monitors.values()} == set(GRPC_SERVICES)
    for monitor in monitors.values():
        selector = monitor["spec"]["selector"]["matchLabels"]
        (service,) = [s for s in services.values() if selector.items() <= s["metadata"]["labels"].items()]
        assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}

    rules = of_kind(full_render, "PrometheusRule")
    umbrella_rule = rules[f"{RELEASE}-paykit"]
    alerts_file = yaml.safe_load((CHARTS_DIR / UMBRELLA / "files" / "alerts.yml").read_text())
    assert umbrella_rule["spec"]["groups"] == alerts_file["groups"], "the umbrella renders files/alerts.yml"
    order_rule = rules[f"{RELEASE}-order"]
    assert order_rule["spec"]["groups"][0]["rules"] == FULL_VALUES["order"]["prometheusRule"]["rules"]

    (topics,) = [
        j for j in of_kind(full_render, "Job").values() if j["metadata"]["name"].endswith("kafka-topics")
    ]
    assert hook_events(topics) >= HOOK_EVENTS
    assert int(topics["metadata"]["annotations"]["helm.sh/hook-weight"]) < 0, "topics before the migrations"
    assert_hardened(topics, topics["spec"]["template"]["spec"])
    print(
        f"\nmonitoring+autoscaling+existingSecret: {len(full_render)} manifests; HPA (autoscaling/v2) "
        f"{len(hpas)}, PDB {kinds['PodDisruptionBudget']}, ServiceMonitor {len(monitors)}, PrometheusRule "
        f"{len(rules)} (umbrella from files/alerts.yml + order's prometheusRule.rules), chart Secrets 0, "
        f"every secretKeyRef -> paykit-secrets"
    )


def test_secret_values_only_in_secrets(helm: Path, helm_env: dict[str, str], charts: Path) -> None:
    """Values given for secrets show up in Secrets and nowhere else in what is rendered."""
    given = {key: f"postgresql://u:{secrets.token_hex(12)}@db:5432/x" for key in DATABASE_KEYS.values()}
    given["SIMULATOR_SECRET"] = secrets.token_hex(16)
    args = [
        arg for key, value in given.items() for arg in ("--set-string", f"global.secretEnv.{key}={value}")
    ]
    manifests = render(helm, helm_env, charts / UMBRELLA, *args)
    assert set(given.values()) <= set(secret_values(manifests).values())
    assert_no_secret_in_configmaps(manifests)
    outside = yaml.safe_dump_all([m for m in manifests if m["kind"] != "Secret"])
    for key, value in given.items():
        assert value not in outside, f"{key} rendered outside a Secret"
        assert base64.b64encode(value.encode()).decode() not in outside, f"{key} (base64) outside a Secret"
    # A secret in plain config is refused, and so is a Secret with no value.
    refused = {
        "order.env.ORDER_DATABASE_URL=postgresql://x": "is a secret",
        "order.secretEnv.ORDER_DATABASE_URL=": "no value for secret ORDER_DATABASE_URL",
    }
    for setting, message in refused.items():
        proc = run_helm(
            helm, helm_env, "template", RELEASE, str(charts / UMBRELLA), "--set", setting, check=False
        )
        assert proc.returncode != 0 and message in proc.stderr, f"--set {setting}: {proc.stderr}"
    print(
        f"\nsecrets: {len(given)} random values given -> only in Secrets (plain and base64 checked outside "
        f"them); a secret under env and an empty secret are refused at render"
    )


def test_validator_rejects_broken_manifests(default_render: list[Manifest]) -> None:
    """The check can fail: broken copies of rendered manifests do not validate."""
    deployment = next(m for m in default_render if m["kind"] == "Deployment")
    validate(deployment)

    def broken(manifest: Manifest, change: Any) -> Manifest:
        copy: Manifest = json.loads(json.dumps(manifest))
        change(copy)
        return copy

    monitor: Manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": {"name": "m"},
        "spec": {
            "selector": {"matchLabels": {"a": "b"}},
            "endpoints": [{"port": "metrics", "interval": "30s"}],
        },
    }
    rule: Manifest = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "r"},
        "spec": {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "up == 0", "for": "5m"}]}]},
    }
    validate(monitor)
    validate(rule)
    cases = {
        'Deployment replicas: "two"': broken(deployment, lambda d: d["spec"].update(replicas="two")),
        "Deployment unknown field spec.replica": broken(deployment, lambda d: d["spec"].update(replica=2)),
        "container unknown field livenessprobe": broken(
            deployment, lambda d: d["spec"]["template"]["spec"]["containers"][0].update(livenessprobe={})
        ),
        "grpc probe port as a name": broken(
            deployment,
            lambda d: d["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["grpc"].update(
                port="grpc"
            ),
        ),
        "ServiceMonitor without selector": broken(monitor, lambda m: m["spec"].pop("selector")),
        'ServiceMonitor interval "30 seconds"': broken(
            monitor, lambda m: m["spec"]["endpoints"][0].update(interval="30 seconds")
        ),
        "PrometheusRule rule without expr": broken(
            rule, lambda r: r["spec"]["groups"][0]["rules"][0].pop("expr")
        ),
    }
    accepted = []
    for name, manifest in cases.items():
        try:
            validate(manifest)
        except jsonschema.ValidationError:
            continue
        accepted.append(name)
    unknown_kind: Manifest = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    with pytest.raises(kubernetes_validate.utils.SchemaNotFoundError):
        validate(unknown_kind)
    print(
        f"\nnegative: {len(cases) - len(accepted)}/{len(cases)} broken manifests rejected, "
        "unknown kind refused"
    )
    assert not accepted, f"accepted broken manifests: {accepted}"


def test_alert_rules_file_matches_deploy() -> None:
    """Helm reads only files inside the chart: files/alerts.yml copies deploy/prometheus/alerts.yml."""
    chart_file = CHARTS_DIR / UMBRELLA / "files" / "alerts.yml"
    source = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
    groups = yaml.safe_load(chart_file.read_text())["groups"]
    assert groups and all(g["name"] and g["rules"] for g in groups)
    assert source.exists(), f"{source.relative_to(REPO_ROOT)} is missing"
    assert yaml.safe_load(source.read_text()) == yaml.safe_load(chart_file.read_text()), (
        f"copy {source.relative_to(REPO_ROOT)} to {chart_file.relative_to(REPO_ROOT)}"
    )
    print(
        f"\nalert rules: {len(groups)} groups in {chart_file.relative_to(REPO_ROOT)} "
        "match deploy/prometheus/alerts.yml"
    )
