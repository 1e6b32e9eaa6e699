"""`python -m payment_core [serve|migrate]`."""

import sys

from paykit.grpckit.runner import run_service_main

from payment_core import bootstrap
from payment_core.settings import PaymentCoreSettings

if __name__ == "__main__":
    sys.exit(
        run_service_main("payment-core", PaymentCoreSettings, bootstrap.build, bootstrap.migrate, sys.argv)
    )
