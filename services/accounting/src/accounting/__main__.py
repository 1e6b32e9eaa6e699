"""`python -m accounting [serve|migrate]`."""

import sys

from paykit.grpckit.runner import run_service_main

from accounting import bootstrap
from accounting.settings import AccountingSettings

if __name__ == "__main__":
    sys.exit(run_service_main("accounting", AccountingSettings, bootstrap.build, bootstrap.migrate, sys.argv))
