"""`python -m channel_gateway [serve|migrate]`."""

import sys

from paykit.grpckit.runner import run_service_main

from channel_gateway import bootstrap
from channel_gateway.settings import GatewaySettings

if __name__ == "__main__":
    sys.exit(
        run_service_main("channel-gateway", GatewaySettings, bootstrap.build, bootstrap.migrate, sys.argv)
    )
