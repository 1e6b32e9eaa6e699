"""Resolving a webhook host to its addresses (for the URL policy in domain/url_policy.py)."""

from __future__ import annotations

import ipaddress
import socket

from notification.domain.url_policy import IpAddress


def resolve(host: str) -> list[IpAddress]:
    """Every address `host` resolves to; empty when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    found: dict[str, IpAddress] = {}
    for _family, _type, _proto, _name, sockaddr in infos:
        text = str(sockaddr[0]).split("%", 1)[0]  # an IPv6 zone id is not part of the address
        found.setdefault(text, ipaddress.ip_address(text))
    return list(found.values())
