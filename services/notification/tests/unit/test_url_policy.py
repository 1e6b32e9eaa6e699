"""Which webhook URLs are accepted: https, and public addresses only (unless development)."""

from __future__ import annotations

import ipaddress

import pytest
from notification.domain.url_policy import check_addresses, literal_address, parsed_url, refused_reason
from paykit.errors import InvalidArgument


def refused(url: str, allow_insecure: bool = False) -> str:
    with pytest.raises(InvalidArgument) as caught:
        parts = parsed_url(url, allow_insecure)
        host = parts.hostname or ""
        literal = literal_address(host)
        check_addresses(host, [literal] if literal else [], allow_insecure)
    assert caught.value.field == "url"
    return caught.value.reason


def test_https_with_a_public_address_is_accepted() -> None:
    parts = parsed_url("https://93.184.216.34:8443/hooks?x=1", allow_insecure=False)
    check_addresses("93.184.216.34", [ipaddress.ip_address("93.184.216.34")], allow_insecure=False)
    assert parts.port == 8443


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("", "required"),
        ("http://93.184.216.34/hook", "https"),
        ("ftp://93.184.216.34/hook", "https"),
        ("https:///nohost", "no host"),
        ("https://user:pw@93.184.216.34/", "credentials"),
        ("https://93.184.216.34:99999/", "not a valid URL"),
        ("https://127.0.0.1/hook", "loopback"),
        ("https://10.1.2.3/hook", "private"),
        ("https://192.168.0.10/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://224.0.0.1/", "multicast"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://[::1]/", "loopback"),
        ("https://[::ffff:10.0.0.1]/", "private"),
        ("https://" + "a" * 2100 + ".com/", "longer"),
    ],
)
def test_refused_urls_say_why(url: str, says: str) -> None:
    assert says in refused(url)


def test_a_host_without_addresses_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="does not resolve"):
        check_addresses("nowhere.invalid", [], allow_insecure=False)


def test_development_flag_allows_http_and_loopback() -> None:
    parsed_url("http://127.0.0.1:8080/hook", allow_insecure=True)
    check_addresses("127.0.0.1", [ipaddress.ip_address("127.0.0.1")], allow_insecure=True)


def test_public_addresses_have_no_refusal() -> None:
    for text in ("8.8.8.8", "2606:4700:4700::1111"):
        assert refused_reason(ipaddress.ip_address(text)) is None
