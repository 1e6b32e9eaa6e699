"""`python -m notification [serve|migrate]`."""

import sys

from paykit.grpckit.runner import run_service_main

from notification import bootstrap
from notification.settings import NotificationSettings

if __name__ == "__main__":
    sys.exit(
        run_service_main("notification", NotificationSettings, bootstrap.build, bootstrap.migrate, sys.argv)
    )
