"""The renew diagnostic on IPv6-only instances, run by the agent against the real kernel, dnsmasq and dhcpcd: it
asks the client the instance really runs (dhcpcd; none for SLAAC) instead of waiting for a udhcpc lease that
never comes."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from teach_helpers import asynctest, communicator, receive_until

from teach.models import DiagnosticRun
from tenants.hostspecs import driver
from tenants.models import Instance
from tenants.testing import settle

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host, pytest.mark.usefixtures("fast_ipv6")]


def v6_only(ipv6_only_instance, mode: str) -> tuple[object, Instance]:
    """A member and their IPv6-only instance in ``mode``, with its DHCPv6 lease when stateful."""
    user, instance = ipv6_only_instance(mode, "2001:db8:76::/64")
    if mode == "dhcpv6-stateful":
        assert settle(lambda: driver().instance_lease6(instance.kernel_id) is not None, timeout=40)
    return user, instance


async def renew(user, instance: Instance) -> tuple[str, list[dict]]:
    comm = communicator(user, f"/ws/teach/instances/{instance.pk}/diagnostics/")
    connected, _ = await comm.connect()
    assert connected
    try:
        assert (await comm.receive_json_from(timeout=15))["type"] == "hello"
        await comm.send_json_to({"type": "run", "action": "renew"})
        frames = await receive_until(comm, lambda f: f["type"] == "done")
    finally:
        await comm.disconnect()
    return "\n".join(f.get("text", "") for f in frames), frames


@asynctest
async def test_renew_asks_dhcpcd_on_a_dhcpv6_only_instance(ipv6_only_instance):
    user, instance = await sync_to_async(v6_only)(ipv6_only_instance, "dhcpv6-stateful")
    before = await sync_to_async(driver().dhcpcd_pid)(instance.kernel_id)
    text, frames = await renew(user, instance)
    assert frames[-1]["exit_code"] == 0, text
    assert "kill -ALRM" in text and "udhcpc" not in text, text
    assert f"holding {instance.ip_address}," in text, text  # the reserved address, from a fresh dhcpcd
    after = await sync_to_async(driver().dhcpcd_pid)(instance.kernel_id)
    assert after is not None and after != before
    runs = await sync_to_async(lambda: list(DiagnosticRun.objects.values_list("action", "status")))()
    assert runs == [("renew", "done")]


@asynctest
async def test_renew_on_a_slaac_instance_says_there_is_no_client(ipv6_only_instance):
    user, instance = await sync_to_async(v6_only)(ipv6_only_instance, "slaac")
    text, frames = await renew(user, instance)
    assert frames[-1]["exit_code"] is not None and frames[-1]["exit_code"] != 0
    assert "SLAAC needs no DHCP client" in text and "udhcpc" not in text, text
