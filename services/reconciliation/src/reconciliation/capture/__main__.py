"""`python -m reconciliation.capture [serve|migrate]`: the capture as its own worker process.

Same settings as the service (RECON_DATABASE_URL, KAFKA_BOOTSTRAP_SERVERS, the channel time
zones); it migrates the database at start unless MIGRATE_ON_START=false. SIGTERM finishes the
batch in hand, commits the acked offsets and exits 0.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from paykit.settings import SettingsError, load_settings
from paykit.telemetry import configure_logging, setup_tracing
from paykit.telemetry.metrics import MetricsSettings

from reconciliation import bootstrap
from reconciliation.capture.app import APP_ID
from reconciliation.capture.worker import CaptureWorker, build_capture
from reconciliation.settings import ReconciliationSettings


def main(argv: Sequence[str]) -> int:
    command = argv[1] if len(argv) > 1 else "serve"
    if command not in ("serve", "migrate"):
        print(f"{APP_ID}: unknown command {command!r}; use serve or migrate", file=sys.stderr)
        return 2
    try:
        settings = load_settings(ReconciliationSettings)
        metrics = load_settings(MetricsSettings)
    except SettingsError as exc:
        print(f"{APP_ID}: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(APP_ID, settings.log_level)
    if command == "migrate" or settings.migrate_on_start:
        bootstrap.migrate(settings.database_url)
        if command == "migrate":
            return 0
    setup_tracing(APP_ID)
    app, _ = build_capture(settings)
    CaptureWorker(app, settings.ready_file, metrics).execute_from_commandline()
    return 0  # execute_from_commandline exits by SystemExit


if __name__ == "__main__":
    sys.exit(main(sys.argv))
