"""The HTTP endpoint channels post their notifications to: POST /webhooks/{channel}."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web
from paykit.errors import DomainError, InvalidArgument, NotFound

from channel_gateway.service_layer.services import Gateway

log = logging.getLogger(__name__)

MAX_NOTIFICATION_BYTES = 64 * 1024


def build_webhook_app(gateway: Gateway) -> web.Application:
    app = web.Application(client_max_size=MAX_NOTIFICATION_BYTES)

    async def receive(request: web.Request) -> web.Response:
        channel = request.match_info["channel"]
        body = await request.read()
        try:
            status, text = await gateway.receive_notification(channel, request.path, request.headers, body)
        except InvalidArgument as exc:
            return web.Response(status=404, text=exc.message)
        except NotFound as exc:
            return web.Response(status=400, text=exc.message)
        except DomainError as exc:
            return web.Response(status=503, text=exc.message)
        except Exception:
            # Not acknowledged: the channel sends it again, nothing is lost.
            log.exception("notification not processed")
            return web.Response(status=503, text="temporarily unavailable")
        return web.Response(status=status, text=text)

    app.router.add_post("/webhooks/{channel}", receive)
    return app


class WebhookServer:
    def __init__(self, gateway: Gateway, host: str, port: int) -> None:
        self._runner = web.AppRunner(build_webhook_app(gateway), access_log=None)
        self._host = host
        self._port = port
        self.bound_port = 0

    async def start(self) -> dict[str, Any]:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        self.bound_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return {"webhook_port": self.bound_port}

    async def stop(self) -> None:
        await self._runner.cleanup()
