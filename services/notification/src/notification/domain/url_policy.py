"""Which webhook URLs a merchant may register: https, and never an address inside our network.

Pure: the caller resolves the host (adapters/resolver.py) and passes the addresses,
so the rule is tested without DNS. Checked at RegisterEndpoint and UpdateEndpoint.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import SplitResult, urlsplit

from paykit.errors import InvalidArgument

MAX_URL_CHARS = 2048
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parsed_url(url: str, allow_insecure: bool) -> SplitResult:
    """The URL's parts once its shape is acceptable; InvalidArgument("url", ...) otherwise."""
    if not url:
        raise InvalidArgument("url", "is required")
    if len(url) > MAX_URL_CHARS:
        raise InvalidArgument("url", f"is longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number in range
    except ValueError as exc:
        raise InvalidArgument("url", f"is not a valid URL: {exc}") from exc
    allowed = ("https", "http") if allow_insecure else ("https",)
    if parts.scheme not in allowed:
        raise InvalidArgument("url", f"must use https (got {parts.scheme or 'no scheme'!r})")
    if not parts.hostname:
        raise InvalidArgument("url", "has no host")
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument("url", "must not carry credentials; the signature authenticates us")
    if parts.fragment:
        raise InvalidArgument("url", "must not have a #fragment")
    return parts


def literal_address(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def refused_reason(address: IpAddress) -> str | None:
    """Why we must never send to `address` (it would reach inside our network), or None."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    # Most specific first: ipaddress counts link-local and unspecified as private too.
    checks = (
        (address.is_unspecified, "unspecified"),
        (address.is_loopback, "loopback"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address.is_private, "private"),
        (address.is_reserved, "reserved"),
    )
    for matched, name in checks:
        if matched:
            return name
    return None


def check_addresses(host: str, addresses: Sequence[IpAddress], allow_insecure: bool) -> None:
    """Every address the host resolves to must be public (unless development allows otherwise)."""
    if not addresses:
        raise InvalidArgument("url", f"host {host!r} does not resolve to any address")
    if allow_insecure:
        return
    for address in addresses:
        reason = refused_reason(address)
        if reason is not None:
            raise InvalidArgument(
                "url", f"host {host!r} resolves to {address}, a {reason} address; use a public host"
            )
