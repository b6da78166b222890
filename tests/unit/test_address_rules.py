"""The URL fetcher's address rules, as a pure function over ipaddress objects: nothing here opens a socket.

The rules are the project's own table (src/adapters/special_addresses.py), so every case below must hold on every
Python version; the last tests prove no `ipaddress` classification property is consulted at all.
"""

import ipaddress

import pytest

from gpt_image_2_mcp.adapters.special_addresses import (
    embedded_ipv4,
    is_link_local,
    is_public_address,
    special_range,
)

NOT_PUBLIC = {
    # IPv4
    "127.0.0.1": "loopback",
    "127.1.2.3": "loopback, not just .1",
    "10.0.0.1": "private",
    "172.16.5.4": "private",
    "172.31.255.255": "private, end of 172.16/12",
    "192.168.1.1": "private",
    "169.254.169.254": "link-local: cloud metadata",
    "169.254.0.1": "link-local",
    "100.64.0.1": "shared address space (carrier-grade NAT)",
    "100.127.255.254": "shared address space, end",
    "0.0.0.0": "unspecified",
    "0.1.2.3": "this network",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast (SSDP)",
    "240.0.0.1": "reserved",
    "255.255.255.254": "reserved, end",
    "255.255.255.255": "limited broadcast",
    "192.0.2.1": "documentation TEST-NET-1",
    "198.51.100.7": "documentation TEST-NET-2",
    "203.0.113.9": "documentation TEST-NET-3",
    "198.18.0.1": "benchmarking",
    "198.19.255.255": "benchmarking, end of 198.18/15",
    "192.0.0.8": "IETF protocol assignments",
    "192.0.0.9": "PCP anycast: infrastructure, refused with its block",
    "192.0.0.170": "NAT64 discovery",
    "192.0.0.255": "IETF protocol assignments, end",
    "192.88.99.1": "deprecated 6to4 relay anycast",
    # IPv6
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "febf:ffff::1": "link-local, end of fe80::/10",
    "fc00::1": "unique local",
    "fd00:ec2::254": "unique local: AWS IMDS over IPv6",
    "fec0::1": "site-local (deprecated)",
    "ff02::1": "multicast",
    "ff0e::1": "multicast, global scope",
    "2001:db8::1": "documentation",
    "2001:db8:ffff::1": "documentation, inside 2001:db8::/32",
    "3fff::1": "documentation (RFC 9637)",
    "3fff:fff::1": "documentation, end of 3fff::/20",
    "100::1": "discard-only",
    "5f00::1": "SRv6 SIDs",
    "2001:2::1": "benchmarking (in 2001::/23)",
    "2001:1::1": "PCP anycast: infrastructure, refused with its block",
    "2001:20::1": "ORCHIDv2: refused with 2001::/23",
    "4000::1": "outside 2000::/3: not allocated",
    "1::1": "outside 2000::/3",
    # IPv6 carrying an IPv4 address, judged by it
    "::ffff:127.0.0.1": "IPv4-mapped loopback",
    "::ffff:169.254.169.254": "IPv4-mapped metadata",
    "::ffff:10.1.2.3": "IPv4-mapped private",
    "::ffff:0.0.0.0": "IPv4-mapped unspecified",
    "::ffff:100.64.0.1": "IPv4-mapped shared address space",
    "::127.0.0.1": "IPv4-compatible loopback",
    "::10.0.0.1": "IPv4-compatible private",
    "2002:7f00:1::": "6to4 embedding 127.0.0.1",
    "2002:a00:1::": "6to4 embedding 10.0.0.1",
    "2002:a9fe:a9fe::1": "6to4 embedding 169.254.169.254",
    "2002:c0a8:101::1": "6to4 embedding 192.168.1.1",
    "2002:c000:8::1": "6to4 embedding 192.0.0.8",
    "64:ff9b::a00:1": "NAT64 embedding 10.0.0.1",
    "64:ff9b::7f00:1": "NAT64 embedding 127.0.0.1",
    "64:ff9b::a9fe:a9fe": "NAT64 embedding 169.254.169.254",
    "64:ff9b::c612:1": "NAT64 embedding 198.18.0.1",
    "64:ff9b:1::1": "local-use NAT64",
    "64:ff9b:1:ffff::808:808": "local-use NAT64 is refused whatever it embeds",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo whose client is 192.0.2.45 (documentation; RFC 4380's example)",
    "2001:0:5ef5:79fd:0:0:80ff:fffe": "Teredo whose client is 127.0.0.1",
    "2001:0:a00:1:8000:63bf:f7f7:f7f7": "Teredo whose server is 10.0.0.1 (client 8.8.8.8)",
}

PUBLIC = {
    "8.8.8.8": "Google DNS",
    "1.1.1.1": "Cloudflare DNS",
    "93.184.216.34": "example.com (historic)",
    "100.128.0.1": "just past 100.64/10",
    "100.63.255.255": "just before 100.64/10",
    "172.32.0.1": "just past 172.16/12",
    "192.0.1.1": "between 192.0.0/24 and 192.0.2/24",
    "198.20.0.1": "just past 198.18/15",
    "223.255.255.254": "just before multicast",
    "2606:4700::1111": "Cloudflare over IPv6",
    "2606:4700:4700::1111": "Cloudflare DNS over IPv6",
    "2a00:1450:4001:80b::200e": "Google over IPv6",
    "2001:200::1": "just past 2001::/23",
    "2001:db9::1": "just past 2001:db8::/32",
    "3fff:1000::1": "just past 3fff::/20",
    "2620:4f:8000::1": "AS112 direct delegation (globally reachable)",
    "::ffff:8.8.8.8": "IPv4-mapped public",
    "::8.8.8.8": "IPv4-compatible (deprecated), judged by 8.8.8.8",
    "64:ff9b::808:808": "NAT64 embedding 8.8.8.8",
    "64:ff9b::101:101": "NAT64 embedding 1.1.1.1",
    "2002:808:808::1": "6to4 embedding 8.8.8.8 (public on 3.11, not on 3.13, by ipaddress's tables)",
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7": "Teredo: server 65.54.227.120, client 8.8.8.8",
}


@pytest.mark.parametrize(("address", "why"), NOT_PUBLIC.items(), ids=list(NOT_PUBLIC))
def test_non_public_addresses_are_refused(address, why):
    assert is_public_address(ipaddress.ip_address(address)) is False, why


@pytest.mark.parametrize(("address", "why"), PUBLIC.items(), ids=list(PUBLIC))
def test_public_addresses_are_allowed(address, why):
    assert is_public_address(ipaddress.ip_address(address)) is True, why


def test_scoped_link_local_addresses_are_refused():
    assert is_public_address(ipaddress.ip_address("fe80::1%eth0")) is False
    assert is_link_local(ipaddress.ip_address("fe80::1%eth0"))


@pytest.mark.parametrize("network", [
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.0.0.0/24",
    "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4",
    "240.0.0.0/4", "fc00::/7", "fe80::/10", "ff00::/8", "2001:db8::/32", "3fff::/20", "5f00::/16", "64:ff9b:1::/48",
    "2001::/23", "100::/64", "::ffff:127.0.0.0/104", "::ffff:10.0.0.0/104", "2002:a00::/24", "2002:7f00::/24",
    "64:ff9b::a00:0/104", "64:ff9b::a9fe:0/112",
])
def test_whole_ranges_are_refused_at_their_edges(network):
    net = ipaddress.ip_network(network)
    for address in (net.network_address, net.network_address + 1, net.broadcast_address - 1, net.broadcast_address):
        assert is_public_address(address) is False, address


@pytest.mark.parametrize(("address", "embedded"), [
    ("::ffff:1.2.3.4", ("1.2.3.4",)),
    ("::1.2.3.4", ("1.2.3.4",)),
    ("64:ff9b::102:304", ("1.2.3.4",)),
    ("2002:102:304:5::6", ("1.2.3.4",)),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", ("65.54.227.120", "192.0.2.45")),
    ("::1", ()),
    ("::", ()),
    ("2606:4700::1111", ()),
    ("64:ff9b:1::102:304", ()),
])
def test_the_ipv4_address_inside_an_ipv6_address(address, embedded):
    assert embedded_ipv4(ipaddress.IPv6Address(address)) == tuple(ipaddress.IPv4Address(a) for a in embedded)


@pytest.mark.parametrize(("address", "link_local"), [
    ("169.254.169.254", True), ("fe80::1", True), ("::ffff:169.254.169.254", True), ("64:ff9b::a9fe:a9fe", True),
    ("2002:a9fe:a9fe::1", True), ("10.0.0.1", False), ("fd00:ec2::254", False), ("8.8.8.8", False),
])
def test_link_local_includes_the_forms_that_embed_it(address, link_local):
    """A link-local refusal (cloud metadata) never suggests allow-listing the host, however it is spelled."""
    assert is_link_local(ipaddress.ip_address(address)) is link_local


def test_a_refusal_names_the_range():
    found = special_range(ipaddress.ip_address("2002:a00:1::"))
    assert found is not None and (found.name, found.source) == ("private-use", "RFC 1918")


_PROPERTIES = ("is_global", "is_private", "is_reserved", "is_loopback", "is_link_local", "is_multicast",
               "is_unspecified", "is_site_local", "ipv4_mapped", "sixtofour", "teredo")


@pytest.fixture
def no_ipaddress_tables(monkeypatch):
    """Every classification property of `ipaddress` raises: whatever passes with this on uses the own table."""
    def refuse(self):
        raise AssertionError("an ipaddress classification property was consulted")

    for cls in (ipaddress.IPv4Address, ipaddress.IPv6Address):
        for name in _PROPERTIES:
            if hasattr(cls, name):
                monkeypatch.setattr(cls, name, property(refuse))


@pytest.mark.parametrize("address", [*NOT_PUBLIC, *PUBLIC])
def test_no_ipaddress_classification_is_consulted(no_ipaddress_tables, address):
    ip = ipaddress.ip_address(address)
    assert is_public_address(ip) is (address in PUBLIC)
    is_link_local(ip)
