"""Alipay (支付宝) as the sandbox plays it: the OpenAPI gateway (gateway.do, sign_type RSA2) for
face-to-face QR payment, its notifications, and its daily trade bill.

It is what channel_gateway's Alipay connector (adapters/connectors/alipay, whose package
docstring is the wire contract) takes for Alipay, on the sandbox's shared accounts and faults:

    POST /alipay/gateway.do      common parameters in the query string, biz_content in the form
                                 body, RSA2-signed by the app's key; answers signed by the
                                 sandbox's Alipay key (methods.py lists the methods and codes)
    GET  /alipay/bills/download  a bill_download_url: the day's trade bill (statement.py), GBK

Modules: signing.py (RSA2, key pairs), wire.py (requests, signed answers, errors, money and
Beijing time), methods.py (each gateway.do method on operations.py), notifications.py
(trade_status_sync), statement.py (the trade bill), protocol.py (the plugin: apps and keys,
credentials, routes, notifications).

Faults: `sim:` directives are read from precreate's subject; Behaviour.unavailable makes the
gateway and the bill link answer HTTP 503 (unsigned, from the front door); a lost answer
(sim:timeout, sim:success_after_timeout and their rates) holds the connection and drops it.
"""

from channel_simulator.protocols.alipay.protocol import AlipayProtocol

__all__ = ["AlipayProtocol"]
