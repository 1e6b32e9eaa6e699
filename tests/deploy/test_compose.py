"""docker-compose.yml, the service Dockerfiles and the observability configs, checked without Docker.

The compose specification's JSON schema (vendored in deploy/schemas/) checks
the shape of docker-compose.yml. The rest checks what no schema can: every
service under services/ runs from its own Dockerfile with a healthcheck and
waits for what it calls; the environment each container gets (its image's ENV
plus compose's) passes that service's own settings class; the images are
multi-stage, non-root, probe the gRPC health service and bake in no secret;
Prometheus scrapes every service. Each check returns the problems it found,
and the tests at the end prove they (and the schema) reject broken input.

Run with `make deploy-check` (pytest -s shows the summary lines).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib
import json
import re
import shlex
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from jsonschema import Draft7Validator
from paykit.settings import SettingsError, load_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
SCHEMA_FILE = REPO_ROOT / "deploy" / "schemas" / "compose-spec.json"
SCHEMA_README = REPO_ROOT / "deploy" / "schemas" / "README.md"
PROMETHEUS_FILE = REPO_ROOT / "deploy" / "prometheus.yml"
OTEL_FILE = REPO_ROOT / "deploy" / "otel-collector.yaml"
POSTGRES_INIT = REPO_ROOT / "deploy" / "postgres-init.sql"
SERVICES_DIR = REPO_ROOT / "services"
UV_LOCK = REPO_ROOT / "uv.lock"

RUNTIME_BASE_IMAGE = "python:3.11-slim"
SERVICE_UID = "10001"
METRICS_PORT = "9464"
OTLP_ENDPOINT = "http://otel-collector:4317"
GRPC_HEALTHCHECK = ("python", "-m", "paykit.grpckit.healthcheck", "--target")
APP_ROOT = "/app"
# Long-running containers that cannot carry a healthcheck, and why.
NO_HEALTHCHECK = {
    "otel-collector": "one static binary in the image: no shell or client to run a probe with",
}
# ENV/ARG names that would bake a credential into an image layer.
SECRET_NAME = re.compile(
    r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL|DATABASE_URL|DSN", re.I
)


# -- loading ------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@cache
def compose_doc() -> dict[str, Any]:
    doc = load_yaml(COMPOSE_FILE)
    assert isinstance(doc, dict), f"{COMPOSE_FILE} is not a mapping"
    return doc


@cache
def compose_validator() -> Draft7Validator:
    # The schema says draft-07 (under an https URL jsonschema does not map to a
    # draft), so the validator class is named here rather than looked up.
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


def schema_commit() -> str:
    match = re.search(r"commit `([0-9a-f]{40})`", SCHEMA_README.read_text(encoding="utf-8"))
    assert match, f"{SCHEMA_README} names no commit of compose-spec.json"
    return match.group(1)


def schema_errors(doc: Any) -> list[str]:
    errors = sorted(compose_validator().iter_errors(doc), key=lambda e: [str(p) for p in e.absolute_path])
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in errors]


# -- Dockerfiles ----------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    stage: int  # index of the FROM this instruction belongs to (-1 before the first)
    keyword: str
    args: str


@dataclass
class Dockerfile:
    path: Path
    instructions: list[Instruction]
    global_args: dict[str, str] = field(default_factory=dict)

    @property
    def stages(self) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == "FROM"]

    def final(self, keyword: str) -> list[Instruction]:
        last = len(self.stages) - 1
        return [i for i in self.instructions if i.stage == last and i.keyword == keyword]

    def image_of(self, stage: Instruction) -> str:
        image = stage.args.split()[0]
        return re.sub(r"\$\{?(\w+)\}?", lambda m: self.global_args.get(m.group(1), m.group(0)), image)

    def final_env(self) -> dict[str, str]:
        env: dict[str, str] = {}
        for instruction in self.final("ENV"):
            env.update(_assignments(instruction.args))
        return env


def _assignments(args: str) -> dict[str, str]:
    pairs = {}
    for token in shlex.split(args):
        name, sep, value = token.partition("=")
        pairs[name] = value if sep else ""
    return pairs


def parse_dockerfile(path: Path, text: str | None = None) -> Dockerfile:
    """Instructions with continuation lines joined and comments dropped (enough for our own files)."""
    text = path.read_text(encoding="utf-8") if text is None else text
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or (not line.strip() and not pending):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    if pending:
        logical.append(pending)
    dockerfile = Dockerfile(path, [])
    stage = -1
    for line in logical:
        keyword, _, args = line.strip().partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        elif keyword == "ARG" and stage == -1:
            dockerfile.global_args.update(_assignments(args))
        dockerfile.instructions.append(Instruction(stage, keyword, args.strip()))
    return dockerfile


def exec_form(args: str) -> list[str]:
    """["a", "b"] -> [a, b]; a shell-form string -> its words."""
    args = args.strip()
    if args.startswith("["):
        value = json.loads(args)
        assert isinstance(value, list)
        return [str(v) for v in value]
    return shlex.split(args)


# -- the workspace --------------------------------------------------------------


@cache
def workspace_packages() -> dict[str, tuple[str, tuple[str, ...]]]:
    """uv.lock's workspace members: name -> (directory, names of the workspace packages it needs)."""
    lock = tomllib.loads(UV_LOCK.read_text(encoding="utf-8"))
    members = {
        p["name"]: p["source"]["editable"] for p in lock["package"] if "editable" in p.get("source", {})
    }
    return {
        p["name"]: (
            members[p["name"]],
            tuple(d["name"] for d in p.get("dependencies", ()) if d["name"] in members),
        )
        for p in lock["package"]
        if p["name"] in members
    }


def closure(package: str) -> set[str]:
    """The workspace packages `package` needs, itself included: what `uv sync --package` installs."""
    seen, todo = set(), [package]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(workspace_packages()[name][1])
    return seen


def service_dirs() -> list[Path]:
    return sorted(p.parent for p in SERVICES_DIR.glob("*/pyproject.toml"))


def project_name(service_dir: Path) -> str:
    name = tomllib.loads((service_dir / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]
    return str(name)


def expected_runtime_copies(service_dir: Path) -> set[str]:
    """The venv, the src/ of every workspace package in the closure, and the migrations."""
    packages = workspace_packages()
    wanted = {f"{APP_ROOT}/.venv"}
    for name in closure(project_name(service_dir)):
        wanted.add(f"{APP_ROOT}/{packages[name][0]}/src")
    if (service_dir / "migrations").is_dir():
        wanted.add(f"{APP_ROOT}/{service_dir.relative_to(REPO_ROOT)}/migrations")
    return wanted


def grpc_listen_port(env: Mapping[str, str]) -> str | None:
    listens = [v for k, v in env.items() if k.endswith("_GRPC_LISTEN")]
    return listens[0].rpartition(":")[2] if listens else None


def dockerfile_problems(service_dir: Path, dockerfile: Dockerfile) -> list[str]:
    where = str(
        dockerfile.path.relative_to(REPO_ROOT)
        if dockerfile.path.is_relative_to(REPO_ROOT)
        else dockerfile.path
    )
    problems = []
    stages = dockerfile.stages
    if len(stages) < 2:
        return [f"{where}: not multi-stage ({len(stages)} FROM)"]
    syncs = [
        i
        for i in dockerfile.instructions
        if i.keyword == "RUN" and i.stage < len(stages) - 1 and "uv sync" in i.args
    ]
    package = project_name(service_dir)
    if not any(
        all(flag in i.args for flag in ("--frozen", "--no-dev", f"--package {package}")) for i in syncs
    ):
        problems.append(f"{where}: no builder stage runs `uv sync --frozen --no-dev --package {package}`")
    runtime_image = dockerfile.image_of(stages[-1])
    if runtime_image != RUNTIME_BASE_IMAGE:
        problems.append(f"{where}: runtime stage is FROM {runtime_image}, not {RUNTIME_BASE_IMAGE}")

    copies = set()
    for instruction in dockerfile.final("COPY"):
        words = shlex.split(instruction.args)
        if not any(w.startswith("--from=") for w in words):
            problems.append(f"{where}: runtime stage copies from the build context: COPY {instruction.args}")
            continue
        copies.add(words[-1])
    wanted = expected_runtime_copies(service_dir)
    if copies != wanted:
        problems.append(
            f"{where}: runtime stage copies {sorted(copies)}; the lock's closure needs {sorted(wanted)}"
            f" (missing {sorted(wanted - copies)}, extra {sorted(copies - wanted)})"
        )

    users = dockerfile.final("USER")
    user = users[-1].args.split(":")[0] if users else "root"
    if user in ("root", "0") or user != SERVICE_UID:
        problems.append(f"{where}: runs as {user!r}, not the unprivileged uid {SERVICE_UID}")

    for instruction in dockerfile.instructions:
        if instruction.keyword in ("ENV", "ARG"):
            for name in _assignments(instruction.args):
                if SECRET_NAME.search(name):
                    problems.append(
                        f"{where}: {instruction.keyword} {name} would bake a secret into the image"
                    )

    env = dockerfile.final_env()
    exposed = {w.split("/")[0] for i in dockerfile.final("EXPOSE") for w in i.args.split()}
    healthchecks = dockerfile.final("HEALTHCHECK")
    port = grpc_listen_port(env)
    if not healthchecks or healthchecks[-1].args.upper().startswith("NONE"):
        problems.append(f"{where}: no HEALTHCHECK")
    elif port is not None:
        command = exec_form(healthchecks[-1].args.partition("CMD")[2])
        if command != [*GRPC_HEALTHCHECK, f"127.0.0.1:{port}"]:
            problems.append(
                f"{where}: HEALTHCHECK {command} does not probe the gRPC health service on :{port}"
            )
    if port is not None and port not in exposed:
        problems.append(f"{where}: gRPC port {port} is not EXPOSEd (EXPOSE {sorted(exposed)})")

    cmds = dockerfile.final("CMD")
    command = exec_form(cmds[-1].args) if cmds else []
    module = command[2] if command[:2] == ["python", "-m"] and len(command) > 2 else None
    if module is None or not (service_dir / "src" / module).is_dir():
        problems.append(f"{where}: CMD {command} does not run this service's package with python -m")
    return problems


@cache
def dockerfiles() -> dict[str, Dockerfile]:
    return {d.name: parse_dockerfile(d / "Dockerfile") for d in service_dirs() if (d / "Dockerfile").exists()}


# -- compose ---------------------------------------------------------------------


def dockerfile_of(service: Mapping[str, Any]) -> str | None:
    build = service.get("build")
    if isinstance(build, dict) and build.get("context", ".") == ".":
        return str(build.get("dockerfile", "Dockerfile"))
    return None


def app_services(doc: Mapping[str, Any]) -> dict[str, str]:
    """services/<dir> -> the compose service running its image as built (no command override)."""
    found: dict[str, str] = {}
    for name, service in doc.get("services", {}).items():
        dockerfile = dockerfile_of(service)
        match = re.fullmatch(r"services/(\w+)/Dockerfile", dockerfile or "")
        if match and "command" not in service and "entrypoint" not in service:
            found.setdefault(match.group(1), name)
    return found


def is_job(service: Mapping[str, Any]) -> bool:
    return (
        str(service.get("restart", "no")) == "no"
        and "healthcheck" in service
        and bool(service["healthcheck"].get("disable"))
    )


def effective_env(doc: Mapping[str, Any], name: str) -> dict[str, str]:
    """What the container sees: its image's ENV, overridden by compose's environment."""
    service = doc["services"][name]
    env: dict[str, str] = {}
    dockerfile = dockerfile_of(service)
    if dockerfile is not None and (REPO_ROOT / dockerfile).exists():
        env.update(parse_dockerfile(REPO_ROOT / dockerfile).final_env())
    raw = service.get("environment", {})
    if isinstance(raw, list):
        raw = dict(item.partition("=")[::2] for item in raw)
    env.update(
        {k: "" if v is None else str(v).lower() if isinstance(v, bool) else str(v) for k, v in raw.items()}
    )
    return env


def has_healthcheck(doc: Mapping[str, Any], name: str) -> bool:
    service = doc["services"][name]
    check = service.get("healthcheck")
    if check is not None:
        return not check.get("disable") and bool(check.get("test"))
    dockerfile = dockerfile_of(service)
    return dockerfile is not None and bool(parse_dockerfile(REPO_ROOT / dockerfile).final("HEALTHCHECK"))


def required_dependencies(env: Mapping[str, str]) -> set[str]:
    """The compose services a container's configuration says it talks to."""
    needs = set()
    for key, value in env.items():
        if key.endswith("_DATABASE_URL"):
            needs.add(urlsplit(value).hostname or "")
        elif key == "KAFKA_BOOTSTRAP_SERVERS":
            needs.update(hostport.rpartition(":")[0] for hostport in value.split(","))
            needs.add("topics")
        elif key.endswith("_TARGET"):
            needs.add(value.rpartition(":")[0])
        elif key in ("SIMULATOR_URL", "OTEL_EXPORTER_OTLP_ENDPOINT"):
            needs.add(urlsplit(value).hostname or "")
    return needs


def dependency_problems(doc: Mapping[str, Any]) -> list[str]:
    services = doc.get("services", {})
    problems = []
    for name, service in services.items():
        depends = service.get("depends_on", {})
        if isinstance(depends, list):
            problems.append(f"{name}: depends_on without conditions {depends}")
            depends = {target: {} for target in depends}
        for target, spec in depends.items():
            if target not in services:
                problems.append(f"{name}: depends_on {target!r}, which is not a service")
                continue
            condition = spec.get("condition")
            if is_job(services[target]):
                wanted = "service_completed_successfully"
            elif has_healthcheck(doc, target):
                wanted = "service_healthy"
            else:
                wanted = "service_started"
            if condition != wanted:
                problems.append(f"{name}: depends_on {target} with {condition}, expected {wanted}")
        missing = required_dependencies(effective_env(doc, name)) - set(depends) - {name}
        if missing:
            problems.append(
                f"{name}: its configuration calls {sorted(missing)} but it does not depend on them"
            )
    problems.extend(cycle_problems(services))
    return problems


def cycle_problems(services: Mapping[str, Any]) -> list[str]:
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> list[str]:
        if state.get(name) == "done" or name not in services:
            return []
        if state.get(name) == "visiting":
            return [f"depends_on cycle: {' -> '.join([*path, name])}"]
        state[name] = "visiting"
        found = [p for target in services[name].get("depends_on", {}) for p in visit(target, [*path, name])]
        state[name] = "done"
        return found

    return [p for name in services for p in visit(name, [])]


def settings_class(module: str) -> type[Any]:
    """The typed settings a service's `python -m <module>` loads (declared in or imported by __main__)."""
    main = importlib.import_module(f"{module}.__main__")
    classes = [
        v
        for k, v in vars(main).items()
        if k.endswith("Settings") and isinstance(v, type) and dataclasses.is_dataclass(v)
    ]
    assert len(classes) == 1, f"{module}.__main__ has settings classes {classes}"
    return classes[0]


def app_service_problems(doc: Mapping[str, Any]) -> list[str]:
    problems = []
    apps = app_services(doc)
    for service_dir in service_dirs():
        name = apps.get(service_dir.name)
        if name is None:
            problems.append(f"services/{service_dir.name}: no compose service built from its Dockerfile")
            continue
        # Declared here, not only inherited from the image, so the file shows every probe.
        check = doc["services"][name].get("healthcheck") or {}
        if check.get("disable") or not check.get("test"):
            problems.append(f"{name}: no healthcheck")
        env = effective_env(doc, name)
        module = exec_form(parse_dockerfile(service_dir / "Dockerfile").final("CMD")[-1].args)[2]
        try:
            load_settings(settings_class(module), env)
        except SettingsError as exc:
            problems.append(f"{name}: its environment does not configure {module}: {exc}")
        port = grpc_listen_port(env)
        if port is None:
            continue
        test = doc["services"][name].get("healthcheck", {}).get("test", [])
        if list(test) != ["CMD", *GRPC_HEALTHCHECK, f"127.0.0.1:{port}"]:
            problems.append(f"{name}: healthcheck {test} does not probe the gRPC health service on :{port}")
        wanted = {
            "METRICS_PORT": METRICS_PORT,
            # The endpoint binds loopback by default: another container could not scrape it.
            "METRICS_HOST": "0.0.0.0",
            "OTEL_EXPORTER_OTLP_ENDPOINT": OTLP_ENDPOINT,
            "OTEL_SERVICE_NAME": name,
        }
        if any(k.endswith("_DATABASE_URL") for k in env):
            wanted["MIGRATE_ON_START"] = "true"
        for key, value in wanted.items():
            if env.get(key) != value:
                problems.append(f"{name}: {key}={env.get(key)!r}, expected {value!r}")
    for name in doc.get("services", {}):
        exempt = name in apps.values() or name in NO_HEALTHCHECK or is_job(doc["services"][name])
        if not exempt and not has_healthcheck(doc, name):
            problems.append(f"{name}: no healthcheck")
    return problems


def database_problems(doc: Mapping[str, Any]) -> list[str]:
    """Every database URL names a database and its owning role that postgres-init.sql creates."""
    sql = POSTGRES_INIT.read_text(encoding="utf-8")
    passwords = dict(re.findall(r"CREATE ROLE (\w+) LOGIN PASSWORD '([^']*)'", sql))
    owners = dict(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+)", sql))
    problems, used = [], {}
    for name in doc.get("services", {}):
        for key, value in effective_env(doc, name).items():
            if not key.endswith("_DATABASE_URL"):
                continue
            url = urlsplit(value)
            database = url.path.lstrip("/")
            if owners.get(database) is None:
                problems.append(
                    f"{name}: {key} names database {database!r}, which postgres-init.sql does not create"
                )
            elif (url.username, url.password) != (owners[database], passwords.get(owners[database])):
                problems.append(f"{name}: {key} does not log in as {database}'s owner {owners[database]}")
            if database in used:
                problems.append(f"{name} and {used[database]} share database {database!r}")
            used[database] = name
    return problems


def routing_problems(doc: Mapping[str, Any]) -> list[str]:
    """Order's methods route (payment-core) to channels the gateway has, at merchants the sandbox has."""
    apps = app_services(doc)
    settings = {}
    for directory in ("order", "payment_core", "channel_gateway", "channel_simulator"):
        name = apps[directory]
        module = exec_form(parse_dockerfile(SERVICES_DIR / directory / "Dockerfile").final("CMD")[-1].args)[2]
        settings[directory] = load_settings(settings_class(module), effective_env(doc, name))
    rules = settings["payment_core"].rules()
    routed = {rule.method for rule in rules}
    problems = [
        f"order offers payment method {m!r}, which payment-core routes nowhere"
        for m in settings["order"].payment_methods
        if m not in routed
    ]
    accounts = settings["channel_gateway"].simulator_accounts()
    for rule in rules:
        problems.extend(
            f"payment-core routes {rule.method!r} to channel {channel!r}, unknown to channel-gateway"
            for channel, _ in rule.channels
            if channel not in accounts
        )
    merchants = set(settings["channel_simulator"].merchant_ids())
    problems.extend(
        f"channel-gateway's channel {c!r} is merchant {m!r}, unknown to the simulator"
        for c, m in accounts.items()
        if m not in merchants
    )
    if settings["channel_gateway"].simulator_secret != settings["channel_simulator"].secret:
        problems.append("channel-gateway and the simulator do not share SIMULATOR_SECRET")
    return problems


def bind_mount_problems(doc: Mapping[str, Any]) -> list[str]:
    problems = []
    for name, service in doc.get("services", {}).items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith((".", "/")) and not (REPO_ROOT / source).exists():
                problems.append(f"{name}: bind mount {source} does not exist")
    return problems


def compose_problems(doc: Mapping[str, Any]) -> list[str]:
    return [
        *app_service_problems(doc),
        *dependency_problems(doc),
        *database_problems(doc),
        *bind_mount_problems(doc),
    ]


# -- Prometheus and the collector ------------------------------------------------------


def scrape_targets(prometheus: Mapping[str, Any]) -> dict[str, str]:
    """host:port -> metrics path."""
    return {
        target: job.get("metrics_path", "/metrics")
        for job in prometheus.get("scrape_configs", [])
        for static in job.get("static_configs", [])
        for target in static.get("targets", [])
    }


def prometheus_problems(doc: Mapping[str, Any], prometheus: Mapping[str, Any]) -> list[str]:
    targets = scrape_targets(prometheus)
    problems = []
    for name in app_services(doc).values():
        env = effective_env(doc, name)
        if grpc_listen_port(env) is None:
            continue  # the sandbox channel: not one of ours to watch
        target = f"{name}:{env.get('METRICS_PORT')}"
        if targets.get(target) != "/metrics":
            problems.append(f"prometheus does not scrape {target}/metrics")
    return problems


def otel_problems(
    doc: Mapping[str, Any], otel: Mapping[str, Any], prometheus: Mapping[str, Any]
) -> list[str]:
    problems = []
    pipelines = otel.get("service", {}).get("pipelines", {})
    for pipeline_name, pipeline in pipelines.items():
        for kind in ("receivers", "processors", "exporters"):
            problems.extend(
                f"collector pipeline {pipeline_name} uses undefined {kind[:-1]} {component}"
                for component in pipeline.get(kind, [])
                if component not in otel.get(kind, {})
            )
    grpc_endpoint = otel.get("receivers", {}).get("otlp", {}).get("protocols", {}).get("grpc", {})
    if not str(grpc_endpoint.get("endpoint", "")).endswith(":4317"):
        problems.append("collector does not receive OTLP/gRPC on :4317")
    exporters = {e for p in pipelines.values() for e in p.get("exporters", [])}
    if not {"debug", "prometheus"} <= exporters:
        problems.append(f"collector pipelines export to {sorted(exporters)}, not debug and prometheus")
    port = str(otel.get("exporters", {}).get("prometheus", {}).get("endpoint", "")).rpartition(":")[2]
    if f"otel-collector:{port}" not in scrape_targets(prometheus):
        problems.append(f"prometheus does not scrape the collector's prometheus exporter on :{port}")
    if "otel-collector" not in doc.get("services", {}):
        problems.append("no otel-collector service")
    return problems


# -- the tests ---------------------------------------------------------------------


def test_vendored_schema_is_the_named_upstream_copy() -> None:
    readme = SCHEMA_README.read_text(encoding="utf-8")
    digest = hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest()
    assert digest in readme, f"{SCHEMA_FILE.name} sha256 {digest} is not the one {SCHEMA_README.name} names"


def test_compose_file_is_valid_against_the_compose_spec() -> None:
    doc = compose_doc()
    assert schema_errors(doc) == []
    print(f"\ncompose: {len(doc['services'])} services valid against compose-spec {schema_commit()[:7]}")


def test_every_service_runs_from_its_dockerfile_with_healthcheck_and_dependencies() -> None:
    doc = compose_doc()
    assert compose_problems(doc) == []
    apps = app_services(doc)
    checked = sum(has_healthcheck(doc, n) for n in doc["services"])
    print(
        f"\ncompose: {len(apps)} services/ images ({', '.join(sorted(apps.values()))}) configured for their "
        f"settings; {checked} healthchecks; every depends_on condition and database checked"
    )


def test_payment_methods_reach_channels_the_sandbox_serves() -> None:
    assert routing_problems(compose_doc()) == []


@pytest.mark.parametrize("service_dir", service_dirs(), ids=lambda d: d.name)
def test_dockerfile_is_multi_stage_non_root_probed_and_secret_free(service_dir: Path) -> None:
    assert (service_dir / "Dockerfile").exists(), f"services/{service_dir.name} has no Dockerfile"
    assert dockerfile_problems(service_dir, dockerfiles()[service_dir.name]) == []


def test_dockerfiles_summary() -> None:
    found = dockerfiles()
    assert set(found) == {d.name for d in service_dirs()}
    grpc = [name for name, d in found.items() if grpc_listen_port(d.final_env())]
    print(
        f"\ndockerfiles: {len(found)} multi-stage images, uid {SERVICE_UID}, HEALTHCHECK "
        f"(gRPC health on {len(grpc)}), no secret in ENV/ARG"
    )


def test_prometheus_scrapes_every_service_and_the_collector() -> None:
    doc, prometheus, otel = compose_doc(), load_yaml(PROMETHEUS_FILE), load_yaml(OTEL_FILE)
    assert prometheus_problems(doc, prometheus) == []
    assert otel_problems(doc, otel, prometheus) == []
    print(
        f"\nprometheus: {len(scrape_targets(prometheus))} targets, "
        f"every gRPC service on :{METRICS_PORT}/metrics"
    )


def test_nothing_references_the_old_draft_dockerfile() -> None:
    assert not (REPO_ROOT / "deploy" / "Dockerfile").exists()
    assert "deploy/Dockerfile" not in COMPOSE_FILE.read_text(encoding="utf-8")


# -- the checks can fail -------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[key]
        node[last] = value

    return mutate


def _delete(path: str) -> Mutation:
    def mutate(doc: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = doc
        for key in parents:
            node = node[key]
        del node[last]

    return mutate


SCHEMA_BREAKERS: dict[str, Mutation] = {
    "bad depends_on condition": _set("services.order.depends_on.postgres.condition", "service_ready"),
    "unknown service key": _set("services.order.enviroment", {"A": "1"}),
    "unknown top-level key": _set("service", {}),
    "healthcheck typo": _set("services.order.healthcheck.retry", 3),
    "depends_on without condition": _set("services.order.depends_on.postgres", {"required": True}),
}

CHECK_BREAKERS: dict[str, tuple[Mutation, str]] = {
    "no healthcheck": (_delete("services.payment-core.healthcheck"), "payment-core: no healthcheck"),
    "missing dependency target": (
        _set("services.order.depends_on.ledger", {"condition": "service_healthy"}),
        "not a service",
    ),
    "started instead of healthy": (
        _set("services.order.depends_on.postgres", {"condition": "service_started"}),
        "expected service_healthy",
    ),
    "undeclared dependency": (_delete("services.order.depends_on.payment-core"), "does not depend on them"),
    "missing setting": (_delete("services.order.environment.PAYMENT_CORE_TARGET"), "PAYMENT_CORE_TARGET"),
    "wrong health port": (_set("services.order.environment.ORDER_GRPC_LISTEN", "0.0.0.0:6000"), ":6000"),
    "shared database": (
        _set(
            "services.accounting.environment.ACCOUNTING_DATABASE_URL",
            "postgresql://paykit_order:order-local-only@postgres:5432/paykit_order",
        ),
        "share database",
    ),
    "service dropped": (_delete("services.notification"), "services/notification"),
    "dependency cycle": (
        _set("services.channel-gateway.depends_on.order", {"condition": "service_healthy"}),
        "cycle",
    ),
}


def _broken(mutate: Mutation) -> dict[str, Any]:
    doc = copy.deepcopy(compose_doc())
    mutate(doc)
    return doc


@pytest.fixture(scope="module")
def rejected() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    print(f"\ncompose: the schema and checks rejected {len(names)} broken documents: {', '.join(names)}")


@pytest.mark.parametrize("case", SCHEMA_BREAKERS)
def test_schema_rejects_a_broken_compose_document(case: str, rejected: list[str]) -> None:
    assert schema_errors(_broken(SCHEMA_BREAKERS[case])), f"the schema accepted a compose file with {case}"
    rejected.append(case)


@pytest.mark.parametrize("case", CHECK_BREAKERS)
def test_checks_reject_what_the_schema_accepts(case: str, rejected: list[str]) -> None:
    mutate, expected = CHECK_BREAKERS[case]
    doc = _broken(mutate)
    problems = compose_problems(doc)
    assert any(expected in p for p in problems), (
        f"{case}: expected a problem with {expected!r}, got {problems}"
    )
    rejected.append(case)


def test_dockerfile_checks_reject_a_single_stage_root_image_with_a_secret(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    text = (SERVICES_DIR / "order" / "Dockerfile").read_text(encoding="utf-8")
    text = text.replace("USER 10001:10001", "USER root").replace(
        "PYTHONUNBUFFERED=1", "PYTHONUNBUFFERED=1 ORDER_DATABASE_URL=postgresql://u:p@db/x"
    )
    text = re.sub(r"\nHEALTHCHECK[^\n]*\\\n[^\n]*\n", "\n", text)
    text = text.replace("COPY --from=builder /app/libs/money/src /app/libs/money/src\n", "")
    problems = dockerfile_problems(SERVICES_DIR / "order", parse_dockerfile(bad, text))
    for expected in (
        "runs as 'root'",
        "ORDER_DATABASE_URL would bake",
        "no HEALTHCHECK",
        "/app/libs/money/src",
    ):
        assert any(expected in p for p in problems), f"expected {expected!r} in {problems}"
    single = 'FROM python:3.11-slim\nCOPY . /app\nCMD ["python", "-m", "order_service"]\n'
    assert "not multi-stage" in dockerfile_problems(SERVICES_DIR / "order", parse_dockerfile(bad, single))[0]
