"""The client's IP address: one function for the public form, consent records, the API, the login lockout
and the contact-access log, so that all of them agree on who the client is.

X-Forwarded-For is believed only as far as the proxies we run put it there: settings.TRUSTED_PROXIES lists
their addresses or networks. Walking the header from the right (each proxy appends the peer it saw), the
first address that is not one of ours is the client; anything to its left was written by the client and
may be forged. With no trusted proxy configured (the default) the header is ignored and the socket's peer
(REMOTE_ADDR) is the client, so nobody can choose their own address by sending a header.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def trusted_networks(proxies: tuple[str, ...]) -> tuple[Network, ...]:
    """The networks in a TRUSTED_PROXIES value; a bare address is a network of one. Raises ValueError for
    an entry that is neither, so a typo stops the start instead of silently trusting nobody."""
    return tuple(ipaddress.ip_network(p.strip(), strict=False) for p in proxies if p.strip())


def _parse(value: str) -> IPAddress | None:
    value = value.strip()
    if value.startswith("["):  # "[2001:db8::1]:443", as some proxies write IPv6 with a port
        value = value[1 : value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:  # "203.0.113.7:51234"
        value = value.split(":")[0]
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None
    # A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; compare and store them as IPv4.
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        return addr.ipv4_mapped
    return addr


def _trusted(addr: IPAddress, networks: tuple[Network, ...]) -> bool:
    return any(addr.version == n.version and addr in n for n in networks)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address as text, or None when the peer's address is not an IP address at all (it must
    not reach an inet column). Also AXES_CLIENT_IP_CALLABLE."""
    peer = _parse(request.META.get("REMOTE_ADDR", "") or "")
    networks = trusted_networks(tuple(getattr(settings, "TRUSTED_PROXIES", ())))
    if peer is None or not networks or not _trusted(peer, networks):
        return None if peer is None else str(peer)
    client = peer
    hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
    for hop in reversed(hops):
        addr = _parse(hop)
        if addr is None:
            # Our proxy passed on something that is no address: nothing left of it can be believed, and
            # the nearest address we do know (a proxy of ours) is the best answer.
            break
        client = addr
        if not _trusted(addr, networks):
            break
    return str(client)
