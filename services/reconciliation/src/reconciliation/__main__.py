"""`python -m reconciliation [serve|migrate]`."""

import sys

from paykit.grpckit.runner import run_service_main

from reconciliation import bootstrap
from reconciliation.settings import ReconciliationSettings

if __name__ == "__main__":
    sys.exit(
        run_service_main(
            "reconciliation", ReconciliationSettings, bootstrap.build, bootstrap.migrate, sys.argv
        )
    )
