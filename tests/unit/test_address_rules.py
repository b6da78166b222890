"""The URL fetcher's address rules, as a pure function over ipaddress objects: nothing here opens a socket."""

import ipaddress

import pytest

from gpt_image_2_mcp.adapters.httpx_url_fetcher import is_public_address

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
    "255.255.255.255": "limited broadcast",
    "192.0.2.1": "documentation TEST-NET-1",
    "198.51.100.7": "documentation TEST-NET-2",
    "203.0.113.9": "documentation TEST-NET-3",
    "198.18.0.1": "benchmarking",
    "192.0.0.8": "IETF protocol assignments",
    # IPv6
    "::1": "loopback",
    "::": "unspecified",
    "fe80::1": "link-local",
    "fc00::1": "unique local",
    "fd00:ec2::254": "unique local: AWS IMDS over IPv6",
    "fec0::1": "site-local (deprecated)",
    "ff02::1": "multicast",
    "2001:db8::1": "documentation",
    "3fff::1": "documentation (RFC 9637)",
    "100::1": "discard-only",
    "5f00::1": "SRv6 SIDs",
    # IPv6 carrying an IPv4 address
    "::ffff:127.0.0.1": "IPv4-mapped loopback",
    "::ffff:169.254.169.254": "IPv4-mapped metadata",
    "::ffff:10.1.2.3": "IPv4-mapped private",
    "::ffff:0.0.0.0": "IPv4-mapped unspecified",
    "::127.0.0.1": "IPv4-compatible loopback",
    "::8.8.8.8": "IPv4-compatible (deprecated) even with a public address",
    "2002:7f00:1::": "6to4 embedding 127.0.0.1",
    "2002:a9fe:a9fe::1": "6to4 embedding 169.254.169.254",
    "2002:c0a8:101::1": "6to4 embedding 192.168.1.1",
    "64:ff9b::a00:1": "NAT64 embedding 10.0.0.1",
    "64:ff9b::7f00:1": "NAT64 embedding 127.0.0.1",
    "64:ff9b::a9fe:a9fe": "NAT64 embedding 169.254.169.254",
    "64:ff9b:1::1": "local-use NAT64",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo",
    "2001:0:5ef5:79fd:0:0:80ff:fffe": "Teredo whose client is 127.0.0.1",
}

PUBLIC = {
    "8.8.8.8": "Google DNS",
    "1.1.1.1": "Cloudflare DNS",
    "93.184.216.34": "example.com (historic)",
    "100.128.0.1": "just past 100.64/10",
    "172.32.0.1": "just past 172.16/12",
    "2606:4700:4700::1111": "Cloudflare DNS over IPv6",
    "2a00:1450:4001:80b::200e": "Google over IPv6",
    "::ffff:8.8.8.8": "IPv4-mapped public",
    "64:ff9b::808:808": "NAT64 embedding 8.8.8.8",
    "2002:808:808::1": "6to4 embedding 8.8.8.8",
}


@pytest.mark.parametrize(("address", "why"), NOT_PUBLIC.items(), ids=list(NOT_PUBLIC))
def test_non_public_addresses_are_refused(address, why):
    assert is_public_address(ipaddress.ip_address(address)) is False, why


@pytest.mark.parametrize(("address", "why"), PUBLIC.items(), ids=list(PUBLIC))
def test_public_addresses_are_allowed(address, why):
    assert is_public_address(ipaddress.ip_address(address)) is True, why


def test_scoped_link_local_addresses_are_refused():
    assert is_public_address(ipaddress.ip_address("fe80::1%eth0")) is False


@pytest.mark.parametrize("network", ["10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "100.64.0.0/10", "fc00::/7",
                                     "fe80::/10"])
def test_whole_ranges_are_refused_at_their_edges(network):
    net = ipaddress.ip_network(network)
    for address in (net.network_address, net.network_address + 1, net.broadcast_address - 1, net.broadcast_address):
        assert is_public_address(address) is False, address
