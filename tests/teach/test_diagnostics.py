"""Diagnostics: a fixed set of checks, validated arguments, run by the agent, streamed over the websocket."""

from __future__ import annotations

import json
import subprocess

import pytest
from asgiref.sync import sync_to_async
from teach_helpers import asynctest, communicator, receive_until

from teach import diagnostics
from teach.diagnostics import DiagnosticError
from teach.models import DiagnosticRun
from tenants.hostspecs import driver

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("args, message", [
    ({"target": "192.168.1.2; reboot", "count": 1}, "not an IP address"),
    ({"target": "$(id)", "count": 1}, "not an IP address"),
    ({"target": "-f", "count": 1}, "not an IP address"),
    ({"target": "224.0.0.1", "count": 1}, "not a single host"),
    ({"target": "192.168.1.2", "count": 6}, "out of range"),
    ({"target": "192.168.1.2", "count": 0}, "out of range"),
    ({"target": "192.168.1.2", "count": "3 -f"}, "not a whole number"),
    ({"target": "192.168.1.2", "count": True}, "not a whole number"),
    ({"target": "192.168.1.2", "flood": 1}, "takes no argument"),
])
def test_bad_arguments_are_rejected(args, message):
    with pytest.raises(DiagnosticError, match=message):
        diagnostics.validate("ping", args, "inst")


def test_actions_are_fixed_and_argv_is_a_list():
    with pytest.raises(DiagnosticError, match="unknown action"):
        diagnostics.validate("bash", {}, "inst")
    with pytest.raises(DiagnosticError, match="not available"):
        diagnostics.validate("renew", {}, "dhcp")
    with pytest.raises(DiagnosticError, match="takes no argument"):
        diagnostics.validate("addr", {"dev": "lo; id"}, "inst")
    clean = diagnostics.validate("ping", {"target": " 192.168.1.2 ", "count": "2"}, "inst")
    assert diagnostics.argv("ping", clean, busybox="/bin/busybox") == [
        "/bin/busybox", "ping", "-c", "2", "-W", "2", "192.168.1.2"]


def _dnsmasq_mac(network) -> str:
    """MAC of the network's dnsmasq interface, read from its qdhcp namespace (not from what the agent reports)."""
    names = driver().names
    out = subprocess.run(["ip", "-n", names.dhcp_ns(network.kernel_id), "-j", "link", "show", "dev",
                          names.dhcp_dev(network.kernel_id)], check=True, capture_output=True, text=True).stdout
    return json.loads(out)[0]["address"]


async def _connect(user, path):
    comm = communicator(user, path)
    connected, code = await comm.connect()
    return comm, connected, code


@pytest.mark.host
@asynctest
async def test_diagnostics_stream_and_refuse(overlap, agent_thread):
    me, them = overlap["ta"], overlap["tb"]
    user, instance = me["user"], me["instance"]
    # Another tenant's namespaces: refused at connect.
    for path in (f"/ws/teach/instances/{them['instance'].pk}/diagnostics/",
                 f"/ws/teach/networks/{them['network'].pk}/dhcp/diagnostics/",
                 f"/ws/teach/networks/{me['network'].pk}/segment/diagnostics/"):
        comm, connected, _ = await _connect(user, path)
        assert not connected, path
    comm, connected, _ = await _connect(user, f"/ws/teach/instances/{instance.pk}/diagnostics/")
    assert connected
    try:
        hello = await comm.receive_json_from(timeout=15)
        assert hello["type"] == "hello"
        # Bad arguments: an error frame, nothing recorded, nothing queued.
        await comm.send_json_to({"type": "run", "action": "ping", "args": {"target": "8.8.8.8 && id", "count": 1}})
        assert (await comm.receive_json_from(timeout=15))["type"] == "error"
        await comm.send_json_to({"type": "run", "action": "ping", "args": {"target": "192.168.1.2", "count": 50}})
        assert "out of range" in (await comm.receive_json_from(timeout=15))["message"]
        assert await sync_to_async(DiagnosticRun.objects.count)() == 0
        # A real ping of the network's DHCP server, from inside the instance namespace.
        await comm.send_json_to({"type": "run", "action": "ping", "args": {"target": "192.168.1.2", "count": 1}})
        frames = await receive_until(comm, lambda f: f["type"] == "done")
        assert frames[0]["type"] == "accepted"
        text = "\n".join(f.get("text", "") for f in frames)
        assert "1 packets received" in text, text
        assert frames[-1]["exit_code"] == 0
        # Then the neighbour table holds the MAC of *this* network's dnsmasq interface.
        await comm.send_json_to({"type": "run", "action": "neigh"})
        frames = await receive_until(comm, lambda f: f["type"] == "done")
        neigh = "\n".join(f.get("text", "") for f in frames)
        ours, theirs = _dnsmasq_mac(me["network"]), _dnsmasq_mac(them["network"])
        assert ours != theirs  # same 192.168.1.2 in both tenants, different interfaces
        assert any("192.168.1.2" in line and ours in line for line in neigh.splitlines()), (ours, neigh)
        assert theirs not in neigh
        # Renew the lease: the instance keeps its address.
        await comm.send_json_to({"type": "run", "action": "renew"})
        frames = await receive_until(comm, lambda f: f["type"] == "done")
        assert f"holding {instance.ip_address}/24" in "\n".join(f.get("text", "") for f in frames)
        await comm.send_json_to({"type": "run", "action": "dnsmasq_log"})
        frames = await receive_until(comm, lambda f: f["type"] == "done")
        assert "dnsmasq" in "\n".join(f.get("text", "") for f in frames)
    finally:
        await comm.disconnect()
    runs = await sync_to_async(lambda: list(DiagnosticRun.objects.order_by("id").values_list("action", "status")))()
    assert runs == [("ping", "done"), ("neigh", "done"), ("renew", "done"), ("dnsmasq_log", "done")]
