"""The inspector's IPv6 block, read by the agent from the real kernel: the RA flags an instance hears (solicited
off the wire) and where each of its addresses came from."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tenants.testing import settle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host, pytest.mark.usefixtures("fast_ipv6")]


@pytest.mark.parametrize("mode,flags,origin", [
    ("slaac", "M=0 O=0 · 2001:db8:75::/64 L=1 A=1", "SLAAC"),
    ("dhcpv6-stateless", "M=0 O=1 · 2001:db8:75::/64 L=1 A=1", "SLAAC"),
    ("dhcpv6-stateful", "M=1 O=1 · 2001:db8:75::/64 L=1 A=0", "DHCPv6"),
])
def test_inspector_shows_ra_flags_and_address_origins(client, ipv6_only_instance, mode, flags, origin):
    user, instance = ipv6_only_instance(mode, "2001:db8:75::/64")
    want = instance.ip_address
    client.force_login(user)
    url = reverse("teach:instance-inspect", args=[instance.pk])
    assert settle(lambda: f"{want}/" in client.get(url).content.decode(), timeout=40)
    text = client.get(url).content.decode()
    assert re.search(r'class="mono ra-flags">\s*' + re.escape(flags), text), text[-3000:]
    row = re.search(rf'{re.escape(want)}/\d+</td><td class="mono">[^<]*</td><td class="origin">([^<]*)<', text)
    assert row and row.group(1) == origin
    assert 'class="origin">link-local<' in text
    assert "router lifetime 0: not a default router" in text
    assert ("dhcpcd: pid" in text) == (mode != "slaac")
    # dhcpcd's lease as held (a stateless reply may follow the SLAAC address, so read again until it is there)
    expected = {"slaac": None, "dhcpv6-stateless": "none (stateless: options only)", "dhcpv6-stateful": want}[mode]
    assert settle(lambda: dhcpv6_address_row(client.get(url).content.decode()) == expected, timeout=40), (
        dhcpv6_address_row(client.get(url).content.decode()), expected)


def dhcpv6_address_row(page: str) -> str | None:
    """The inspector's "DHCPv6 address" lease row, or None when it shows none."""
    held = re.search(r'<th>DHCPv6 address</th><td class="mono">([^<]*)<', page)
    return held.group(1) if held else None
