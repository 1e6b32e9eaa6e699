"""`python -m order_service [serve|migrate]`."""

import sys

from paykit.grpckit.runner import run_service_main

from order_service import bootstrap
from order_service.settings import OrderSettings

if __name__ == "__main__":
    sys.exit(run_service_main("order", OrderSettings, bootstrap.build, bootstrap.migrate, sys.argv))
