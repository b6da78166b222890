"""Which IP addresses a URL fetch may reach: the project's own table, so the answer is the same on every Python.

`ipaddress`'s `is_global`, `is_private` and friends follow tables that change between Python releases (3.11 and
3.13 disagree about 2002::/16, 192.0.0.0/24, 3fff::/20, 5f00::/16, 64:ff9b:1::/48 ...), so none of them is used.
The table below is taken from the IANA IPv4 and IPv6 Special-Purpose Address Registries (entries whose
"Globally Reachable" is False, or N/A for deprecated ones), plus multicast, plus, for IPv6, everything outside
2000::/3 (the only block the IANA IPv6 Address Space registry allocates to global unicast; the rest is reserved by
the IETF, e.g. the deprecated site-local fec0::/10).

Deliberately stricter than the registries: a few more-specific entries inside refused blocks are marked globally
reachable there (192.0.0.9/32 and 192.0.0.10/32 PCP/TURN anycast, 192.88.99.2/32 6a44 relay; in 2001::/23 the
PCP/TURN/DNS-SD anycasts, AMT 2001:3::/32, AS112 2001:4:112::/48, ORCHIDv2 2001:20::/28, DET 2001:30::/28). They
are protocol infrastructure, never an image host, so the whole block is refused.

IPv6 forms that carry an IPv4 address are judged by that IPv4 address alone: IPv4-mapped ::ffff:0:0/96,
IPv4-compatible ::/96 (deprecated, but a host with an automatic tunnel still routes it to the IPv4 address), NAT64
64:ff9b::/96 (RFC 6052) and 6to4 2002::/16. Teredo 2001::/32 carries two (its server and its obfuscated client):
both must be public.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class SpecialRange:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    name: str
    source: str

    def __contains__(self, ip: IPAddress) -> bool:
        # On integers: a scoped IPv6 address (fe80::1%eth0) is judged without its scope.
        if ip.version != self.network.version:
            return False
        shift = self.network.max_prefixlen - self.network.prefixlen
        return int(ip) >> shift == int(self.network.network_address) >> shift


def _table(*rows: tuple[str, str, str]) -> tuple[SpecialRange, ...]:
    return tuple(SpecialRange(ipaddress.ip_network(network), name, source) for network, name, source in rows)


LINK_LOCAL = "link-local"

SPECIAL_IPV4 = _table(
    ("0.0.0.0/8", "'this network'", "RFC 791"),
    ("10.0.0.0/8", "private-use", "RFC 1918"),
    ("100.64.0.0/10", "shared address space (carrier-grade NAT)", "RFC 6598"),
    ("127.0.0.0/8", "loopback", "RFC 1122"),
    ("169.254.0.0/16", LINK_LOCAL, "RFC 3927"),
    ("172.16.0.0/12", "private-use", "RFC 1918"),
    ("192.0.0.0/24", "IETF protocol assignments", "RFC 6890"),
    ("192.0.2.0/24", "documentation (TEST-NET-1)", "RFC 5737"),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast", "RFC 7526"),
    ("192.168.0.0/16", "private-use", "RFC 1918"),
    ("198.18.0.0/15", "benchmarking", "RFC 2544"),
    ("198.51.100.0/24", "documentation (TEST-NET-2)", "RFC 5737"),
    ("203.0.113.0/24", "documentation (TEST-NET-3)", "RFC 5737"),
    ("224.0.0.0/4", "multicast", "RFC 5771"),
    ("240.0.0.0/4", "reserved", "RFC 1112"),  # includes 255.255.255.255/32, limited broadcast (RFC 919)
)

SPECIAL_IPV6 = _table(
    ("::/128", "unspecified", "RFC 4291"),
    ("::1/128", "loopback", "RFC 4291"),
    ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation", "RFC 8215"),
    ("100::/64", "discard-only", "RFC 6666"),
    # Holds benchmarking 2001:2::/48, deprecated ORCHID 2001:10::/28 and the anycasts named above; Teredo,
    # 2001::/32, is unwrapped before this table is consulted.
    ("2001::/23", "IETF protocol assignments", "RFC 2928"),
    ("2001:db8::/32", "documentation", "RFC 3849"),
    ("3fff::/20", "documentation", "RFC 9637"),
    ("5f00::/16", "segment routing (SRv6) SIDs", "RFC 9602"),
    ("fc00::/7", "unique-local", "RFC 4193"),
    ("fe80::/10", LINK_LOCAL, "RFC 4291"),
    ("fec0::/10", "site-local (deprecated)", "RFC 3879"),
    ("ff00::/8", "multicast", "RFC 4291"),
)

_GLOBAL_UNICAST_V6 = SpecialRange(ipaddress.ip_network("2000::/3"), "global unicast", "RFC 4291")
_NOT_GLOBAL_UNICAST_V6 = SpecialRange(ipaddress.ip_network("::/0"), "outside global unicast 2000::/3", "RFC 4291")

_MAPPED = ipaddress.ip_network("::ffff:0:0/96")
_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_SIX_TO_FOUR = ipaddress.ip_network("2002::/16")
_TEREDO = ipaddress.ip_network("2001::/32")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address, ...]:
    """The IPv4 address(es) an IPv6 address carries, by the forms above; () for a plain IPv6 address."""
    value = int(ip)
    low32 = ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if ip in _MAPPED or ip in _NAT64 or (ip in _COMPATIBLE and value > 1):  # :: and ::1 are themselves
        return (low32,)
    if ip in _SIX_TO_FOUR:  # 2002:AABB:CCDD::/48 carries AA.BB.CC.DD
        return (ipaddress.IPv4Address((value >> 80) & 0xFFFFFFFF),)
    if ip in _TEREDO:  # 2001:0:SERVER:flags:port:~CLIENT (RFC 4380): the client's address is inverted
        return (ipaddress.IPv4Address((value >> 64) & 0xFFFFFFFF), ipaddress.IPv4Address(~value & 0xFFFFFFFF))
    return ()


def special_range(ip: IPAddress) -> SpecialRange | None:
    """The table entry that makes `ip` unfit for a fetch, or None for a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        if embedded := embedded_ipv4(ip):
            return next((found for v4 in embedded if (found := special_range(v4)) is not None), None)
        if ip not in _GLOBAL_UNICAST_V6:
            return next((entry for entry in SPECIAL_IPV6 if ip in entry), _NOT_GLOBAL_UNICAST_V6)
        table = SPECIAL_IPV6
    else:
        table = SPECIAL_IPV4
    return next((entry for entry in table if ip in entry), None)


def is_public_address(ip: IPAddress) -> bool:
    """True only for globally reachable unicast addresses (see the module's docstring for the rules)."""
    return special_range(ip) is None


def is_link_local(ip: IPAddress) -> bool:
    """Link-local, IPv4-embedding forms included: where cloud metadata services live."""
    found = special_range(ip)
    return found is not None and found.name == LINK_LOCAL
