"""The namespace inspector and compare mode, read by the agent (job in a thread) from the real kernel."""

from __future__ import annotations

import pytest
from django.urls import reverse

from teach import compare
from tenants.hostspecs import names

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.mark.host
def test_inspector_shows_real_addresses_of_overlapping_instances(client, overlap, agent_thread):
    seen = {}
    for slug, other in (("ta", "tb"), ("tb", "ta")):
        me, them = overlap[slug], overlap[other]
        client.force_login(me["user"])
        page = client.get(reverse("teach:instance-inspect", args=[me["instance"].pk]))
        assert page.status_code == 200
        text = page.content.decode()
        assert f"{me['instance'].ip_address}/24" in text
        assert me["instance"].mac_address in text
        assert names().inst_ns(me["instance"].kernel_id) in text
        seen[slug] = text
        # Another tenant's namespaces do not exist for this user.
        assert client.get(reverse("teach:instance-inspect", args=[them["instance"].pk])).status_code == 404
        assert client.get(reverse("teach:dhcp-inspect", args=[them["network"].pk])).status_code == 404
        assert client.get(reverse("teach:segment-inspect", args=[me["network"].pk])).status_code == 404
        # Their DHCP namespace: dnsmasq listening on 67 and 53.
        dhcp = client.get(reverse("teach:dhcp-inspect", args=[me["network"].pk])).content.decode()
        assert "DHCP server (dnsmasq)" in dhcp and "DNS (dnsmasq)" in dhcp
    assert overlap["ta"]["instance"].ip_address == overlap["tb"]["instance"].ip_address


@pytest.mark.host
def test_compare_highlights_differences(client, overlap, agent_thread, user_factory):
    admin = user_factory(is_superuser=True)
    client.force_login(admin)
    a, b = overlap["ta"]["instance"], overlap["tb"]["instance"]
    page = client.get(reverse("teach:compare") + f"?a=inst-{a.pk}&b=inst-{b.pk}")
    assert page.status_code == 200
    text = page.content.decode()
    assert f"Both namespaces hold {a.ip_address}/24" in text
    assert a.mac_address in text and b.mac_address in text
    assert "cmp-differs" in text  # the NICs: same role, different MAC
    # A member may not compare with another tenant's namespace.
    client.force_login(overlap["ta"]["user"])
    assert client.get(reverse("teach:compare") + f"?a=inst-{a.pk}&b=inst-{b.pk}").status_code == 404
    # The segment namespace is for superusers.
    client.force_login(admin)
    seg = client.get(reverse("teach:segment-inspect", args=[overlap["ta"]["network"].pk])).content.decode()
    assert "bridge" in seg and names().bridge(overlap["ta"]["network"].kernel_id) in seg


def test_compare_marks_rows_by_meaning():
    left = {"links": [{"name": "p-i1", "role": "instance NIC", "mac": "fa:16:3e:00:00:01", "state": "UP"}],
            "addresses": [{"address": "192.168.1.3", "prefixlen": 24, "dev_role": "instance NIC"}],
            "neighbours": [{"ip": "192.168.1.2", "mac": "aa:aa:aa:aa:aa:aa"}], "inode": 1}
    right = {"links": [{"name": "p-i2", "role": "instance NIC", "mac": "fa:16:3e:00:00:02", "state": "UP"}],
             "addresses": [{"address": "192.168.1.3", "prefixlen": 24, "dev_role": "instance NIC"},
                           {"address": "10.0.0.1", "prefixlen": 8, "dev_role": "instance NIC"}],
             "neighbours": [{"ip": "192.168.1.2", "mac": "bb:bb:bb:bb:bb:bb"}], "inode": 2}
    a, b = compare.compare(left, right)
    assert a["links"][0]["cmp"] == "differs"
    assert a["addresses"][0]["cmp"] == "same"
    assert [r["cmp"] for r in b["addresses"]] == ["same", "only"]
    assert a["neighbours"][0]["cmp"] == "differs"
    text = " ".join(compare.summary(a, b))
    assert "192.168.1.3/24" in text and "different MAC" in text and "aa:aa:aa:aa:aa:aa" in text
