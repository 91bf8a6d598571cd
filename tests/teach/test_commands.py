"""Equivalent commands: derived from the plan the agent applies, shown to the right people, replayable by hand."""

from __future__ import annotations

import secrets
import string
import subprocess
import tempfile
from pathlib import Path

import pytest
from django.urls import reverse

from teach import selectors
from tenants.host import HostConfig, LinuxHostDriver, netns
from tenants.hostspecs import host_config

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_planning_is_pure(network_factory):
    """The web process may compute transcripts: planning creates no directory, namespace or process."""
    network = network_factory(cidr="10.9.0.0/24")
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp) / "never-created"
        d = LinuxHostDriver(HostConfig(prefix="zq-", state_dir=state))
        blocks = selectors.network_commands(network, host_driver=d)
        assert not state.exists()
        # Only this driver's own prefix: other test runs on the machine create namespaces meanwhile.
        assert not [name for name in netns.list_names() if name.startswith("zq-")]
    commands = blocks[0].commands
    assert commands[0] == f"ip netns add zq-seg-{network.kernel_id}"
    assert any(c.startswith(f"ip netns exec zq-qdhcp-{network.kernel_id} env ") and "dnsmasq" in c for c in commands)


def test_commands_pages_are_tenant_scoped(client, user_factory, tenant_factory, network_factory):
    from tenants import services
    from tenants.choices import Role

    alice, bob = user_factory(), user_factory()
    acme, globex = tenant_factory(), tenant_factory()
    services.membership_set(tenant=acme, user=alice, role=Role.MEMBER)
    services.membership_set(tenant=globex, user=bob, role=Role.MEMBER)
    network = network_factory(tenant=acme, cidr="192.168.1.0/24")
    instance = services.instance_create(network=network, hostname="vm1")
    client.force_login(alice)
    page = client.get(reverse("teach:network-commands", args=[network.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    assert "ip netns add" in text and "udhcpc" in text and "type veth peer" in text
    script = client.get(reverse("teach:instance-commands", args=[instance.pk]) + "?format=sh")
    assert script.status_code == 200 and script.content.decode().startswith("#!/bin/bash")
    client.force_login(bob)
    assert client.get(reverse("teach:network-commands", args=[network.pk])).status_code == 404
    assert client.get(reverse("teach:instance-commands", args=[instance.pk])).status_code == 404


@pytest.mark.host
def test_transcript_of_realised_network_replays_with_bash(overlap):
    """The commands shown for a network realised from DB rows, replayed with bash on a clean prefix, lease.

    (The host driver's own replay test is ``tests/host/test_driver.py::test_transcript_replayed_with_bash_leases``;
    this one goes through the database rows, ``hostspecs`` and the page's selector.)
    """
    network, instance = overlap["ta"]["network"], overlap["ta"]["instance"]
    prefix = "r" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(3)) + "-"
    with tempfile.TemporaryDirectory(prefix="teach-replay-") as tmp:
        Path(tmp).chmod(0o755)  # dnsmasq drops privileges and must reach its files
        fresh = LinuxHostDriver(HostConfig(prefix=prefix, state_dir=Path(tmp) / "state", dnsmasq=host_config().dnsmasq,
                                      busybox=host_config().busybox))
        try:
            script = selectors.as_script(selectors.network_commands(network, host_driver=fresh))
            r = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            lease = fresh.wait_instance_lease(instance.kernel_id, timeout=10)
            assert lease is not None and str(lease.ip) == instance.ip_address
            ns = fresh.names.inst_ns(instance.kernel_id)
            addr = subprocess.run(["ip", "-n", ns, "-4", "-o", "addr", "show"], capture_output=True, text=True).stdout
            assert f"{instance.ip_address}/24" in addr
            # It is a separate copy: the original namespace still exists alongside it.
            assert netns.exists(host_config().prefix + f"inst-{instance.kernel_id}")
        finally:
            fresh.remove_orphans(set(), set())
            assert not [n for n in netns.list_names() if n.startswith(prefix)]


def test_panels_for_portal_pages(rf, user_factory, network_factory):
    """The includes other apps put on their network/instance pages render the commands and links."""
    from django.template import Context, Template

    from tenants import services

    network = network_factory(cidr="192.168.1.0/24")
    instance = services.instance_create(network=network, hostname="vm1")
    template = Template("{% load teach %}{% teach_network_panel network %}{% teach_instance_panel instance %}")
    html = template.render(Context({"network": network, "instance": instance, "user": user_factory()}))
    assert html.count("ip netns add") >= 3 and "udhcpc" in html
    assert reverse("teach:dhcp-inspect", args=[network.pk]) in html
    assert reverse("teach:instance-inspect", args=[instance.pk]) in html
    assert reverse("teach:segment-inspect", args=[network.pk]) not in html  # superusers only
    admin_html = template.render(Context({"network": network, "instance": instance,
                                          "user": user_factory(is_superuser=True)}))
    assert reverse("teach:segment-inspect", args=[network.pk]) in admin_html
