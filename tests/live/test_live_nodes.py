"""Node changes on the live websocket (issue 13, "Views"): draining a node tells the tenants with something on it
that their DHCP servers moved and what state the node is in, and tells nobody else."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from live_helpers import communicator

from tenants import failover, nodes, services

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_drain_reaches_the_tenants_on_that_node_only(two_tenants):
    acme, globex = two_tenants["acme"], two_tenants["globex"]
    for i in (1, 2, 3):
        nodes.node_register(name=f"n{i}", vtep_address=f"10.250.0.{i}")
    spread = services.network_create(tenant=acme, name="spread", subnet={"cidr": "10.7.0.0/24"})

    async def body():
        alice = communicator(two_tenants["alice"], f"/ws/live/tenants/{acme.pk}/")
        bob = communicator(two_tenants["bob"], f"/ws/live/tenants/{globex.pk}/")
        for comm in (alice, bob):
            assert (await comm.connect(timeout=5))[0]
            await comm.receive_json_from(timeout=5)
        await sync_to_async(failover.node_drain)("n1")
        got = [await alice.receive_json_from(timeout=5) for _ in range(5)]
        by_event = {}
        for frame in got:
            by_event.setdefault(frame["event"], []).append(frame["data"])
        assert by_event["node.updated"][0] == {"kind": "node", "name": "n1", "state": "draining"}
        [servers] = by_event["dhcp_servers.updated"]
        assert servers["network"] == spread.pk
        assert [(s["rank"], s["node"]) for s in servers["servers"]] == [(0, "n3"), (1, "n2")]
        assert servers["servers"][0]["addresses"] == {"10.7.0.0/24": "10.7.0.2"}  # the duty kept its address
        assert by_event["network.updated"][0]["node"] == "n3"
        assert await bob.receive_nothing(timeout=0.5)  # globex has nothing on n1
        for comm in (alice, bob):
            await comm.disconnect()

    async_to_sync(body)()
