"""The address policy against an independent table of special-purpose ranges (IANA's IPv4 and
IPv6 registries), over addresses and URLs Hypothesis makes up: a non-public address is never
let through, a public one never refused, and no input raises anything but a refusal in words."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts import egress

NOT_GLOBAL = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "::/96", "100::/64", "2001::/23", "2001:db8::/32", "fc00::/7",
        "fe80::/10", "fec0::/10", "ff00::/8", "64:ff9b:1::/48",
    )
]  # fmt: skip


def _special(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return any(ip in n for n in NOT_GLOBAL if n.version == ip.version)


def _refused(url: str) -> bool:
    try:
        egress.check(url)
    except egress.EgressError as exc:
        assert str(exc) == egress.NOT_ALLOWED
        return True
    return False


@settings(max_examples=300, deadline=None)
@given(st.ip_addresses(v=4))
def test_it_judges_an_ipv4_address_and_its_ipv6_forms_alike(ip: ipaddress.IPv4Address) -> None:
    refused = _refused(f"http://{ip}/hook")
    if _special(ip):
        assert refused
    mapped = ipaddress.IPv6Address(f"::ffff:{ip}")
    six_to_four = ipaddress.IPv6Address((0x2002 << 112) | (int(ip) << 80))
    nat64 = ipaddress.IPv6Address(f"64:ff9b::{ip}")
    for form in (mapped, six_to_four, nat64):
        assert _refused(f"https://[{form}]:8443/hook") == refused


@settings(max_examples=300, deadline=None)
@given(st.ip_addresses(v=6))
def test_it_refuses_every_special_ipv6_address(ip: ipaddress.IPv6Address) -> None:
    if _special(ip) and ip.ipv4_mapped is None:
        assert _refused(f"http://[{ip}]/hook")


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=60),
        st.builds(
            "{}{}".format,
            st.sampled_from(["http://", "https://", "http://[", "https://user@", "ftp://", ""]),
            st.text(max_size=40),
        ),
    )
)
def test_it_answers_any_target_with_a_destination_or_words(url: str) -> None:
    try:
        destination = egress.check(url)
    except egress.EgressError as exc:
        assert str(exc) and "Errno" not in str(exc)
        return
    assert all(egress.is_public(ip) for ip in destination.addresses)
    assert destination.scheme in ("http", "https") and 0 < destination.port < 65536
