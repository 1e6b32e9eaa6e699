# The two commands a new user runs: `make demo` and `make test`.
# Each installs what it needs (deploy/install-deps.sh) and is safe to run twice.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")
RUN := $(UV) run --frozen
ROWS ?= 10000000

.PHONY: help deps proto proto-check proto-breaking proto-baseline lint typecheck test test-unit demo up down bench-e2e bench-ledger bench-notify ledger-check helm-check clean

help:
	@echo "make demo       bring up Postgres, Kafka, every service and the simulator; pay 100 orders; stop"
	@echo "make test       install what is needed, start private Postgres + Kafka, run every test, stop them"
	@echo "make up / down  keep the suite running for manual use / stop it"
	@echo "make proto      regenerate the Python code from protos/"
	@echo "make proto-breaking  buf breaking: protos/ against the released baseline (protos/baseline/v1.binpb)"
	@echo "make proto-baseline  after a release only: rebuild protos/baseline/v1.binpb from protos/ (docs/events.md)"
	@echo "make lint       ruff + mypy + generated-code check"
	@echo "make bench-e2e  sustained paid orders/s for 60 s -> bench/results/e2e.json"
	@echo "make bench-ledger  journal entries/s posted by accounting vs raw INSERTs (ENTRIES=100000) -> bench/results/ledger.json"
	@echo "make bench-notify  webhook deliveries/s to a local merchant receiver (EVENTS=20000) -> bench/results/notify.json"
	@echo "make bench-recon  reconciliation matching of ROWS lines vs ROWS records, 1 % planted (ROWS=$(ROWS)) -> bench/results/recon.json"
	@echo "make ledger-check  check the running suite's ledger: double entry, balances, trial balance (exit 1 if broken)"
	@echo "make helm-check  helm lint the charts/ and validate what they render against Kubernetes schemas, offline"
	@echo "make deploy-check  validate docker-compose.yml (compose-spec schema), the Dockerfiles and Prometheus config, offline"

deps:
	@bash deploy/install-deps.sh

proto: deps
	$(RUN) python -m paykit.contracts.codegen generate

proto-check: deps
	$(RUN) python -m paykit.contracts.codegen check

# buf from .run/tools/bin (`install-deps.sh buf` builds it once); rules in protos/buf.yaml.
BUF := .run/tools/bin/buf
PROTO_BASELINE := protos/baseline/v1.binpb

proto-breaking:
	@bash deploy/install-deps.sh buf
	$(BUF) breaking protos --against $(PROTO_BASELINE)
	@echo "proto-breaking: no breaking change against $(PROTO_BASELINE)"

# Deliberately, in its own reviewed commit after a release: the released schemas become the reference.
proto-baseline:
	@bash deploy/install-deps.sh buf
	$(BUF) build protos --exclude-source-info -o $(PROTO_BASELINE)
	@echo "proto-baseline: wrote $(PROTO_BASELINE); commit it"

lint: deps proto-check
	$(RUN) ruff check libs services tests bench conftest.py
	MYPYPATH=$$(ls -d libs/*/src services/*/src | paste -sd:) $(RUN) mypy \
		-p paykit.money -p paykit.ids -p paykit.errors -p paykit.db -p paykit.messaging -p paykit.grpckit -p paykit.idempotency \
		-p paykit.telemetry -p paykit.devstack -p order_service -p payment_core -p channel_gateway -p channel_simulator -p accounting -p notification \
		-p reconciliation

test: deps proto-check
	$(RUN) pytest -q

test-unit: deps
	$(RUN) pytest -q -m "not e2e"

demo: deps
	$(RUN) python -m paykit.devstack demo

up: deps
	$(RUN) python -m paykit.devstack up

down:
	$(RUN) python -m paykit.devstack down

bench-e2e: deps
	$(RUN) python -m bench.e2e

bench-ledger: deps
	$(RUN) python -m bench.ledger

bench-notify: deps
	$(RUN) python -m bench.notify

.PHONY: bench-recon
bench-recon: deps
	ROWS=$(ROWS) $(RUN) python -m bench.recon

# Against what `make up` started: its record names accounting's database.
ledger-check:
	$(RUN) python -m accounting.entrypoints.ledger_cli check --suite-record .run/suite/suite.json

# Offline: helm from .run/tools/bin (installed by deps), kubernetes-validate schemas.
helm-check: deps
	$(RUN) pytest -q -s tests/deploy/test_helm.py

# Offline, no Docker engine: docker-compose.yml against the vendored compose-spec schema, plus the Dockerfiles.
.PHONY: deploy-check
deploy-check: deps
	$(RUN) pytest -q -s tests/deploy/test_compose.py

clean: down
	rm -rf .run
