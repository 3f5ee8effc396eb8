"""The client's address behind reverse proxies (``request.client_address``).

``X-Forwarded-For`` is written by whoever sends the request, so it is believed only as
far as it was written by a proxy we trust: the setting ``learningcity.trusted_proxies``
lists addresses or networks (CIDR) separated by spaces, default none. The client
address is the first untrusted hop reading the chain from the right, the socket's
``REMOTE_ADDR`` first; with no trusted proxy the header is ignored entirely. Throttles
and the audit trail use this address, so a client cannot choose its own.
"""
from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from pyramid.exceptions import ConfigurationError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: the longest address kept (the audit trail's column)
MAX_LENGTH = 64


def parse_trusted(value: str | None) -> tuple[Network, ...]:
    """The trusted proxies of the setting (addresses or CIDRs); a clear error names a bad one."""
    networks = []
    for word in (value or "").replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            raise ConfigurationError(
                f"learningcity.trusted_proxies: {word!r} is not an address or network "
                "(e.g. 10.0.0.5 or 10.0.0.0/24)") from None
    return tuple(networks)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        found = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    mapped = getattr(found, "ipv4_mapped", None)
    return mapped or found


def _trusted(address: Any, networks: Iterable[Network]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def client_address(remote_addr: str | None, forwarded_for: str | None,
                   trusted: tuple[Network, ...]) -> str:
    """The first untrusted hop from the right of ``forwarded_for`` + ``remote_addr``.

    A hop that is not an address ends the walk at the trusted proxy that passed it on
    (that proxy is the last one we can vouch for).
    """
    remote = (remote_addr or "").strip()
    current = _ip(remote)
    if current is None:
        return remote[:MAX_LENGTH]
    if not trusted or not forwarded_for or not _trusted(current, trusted):
        return str(current)
    for hop in reversed(forwarded_for.split(",")):
        address = _ip(hop)
        if address is None:
            return str(current)
        current = address
        if not _trusted(current, trusted):
            return str(current)
    return str(current)  # every hop trusted: the leftmost is as close to a client as we see


def request_client_address(request: Any) -> str:
    """``request.client_address``: the client as :func:`client_address` finds it."""
    return client_address(request.environ.get("REMOTE_ADDR"),
                          request.environ.get("HTTP_X_FORWARDED_FOR"),
                          request.registry.trusted_proxies)


def includeme(config: Any) -> None:
    """Parse the trusted proxies once and add ``request.client_address``."""
    config.registry.trusted_proxies = parse_trusted(
        config.registry.settings.get("learningcity.trusted_proxies"))
    config.add_request_method(request_client_address, "client_address", reify=True)
