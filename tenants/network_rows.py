"""The last step of deleting networks: their rows go once no node holds a share of them any more.

Why a module of its own (database only, no host): two callers finish deletions. A node's teardown job deletes
its own share and then the rows (``convergence.destroy_networks``); and a node that is ``down`` can tear nothing
down, so ``failover.down_shares_forget`` deletes its share of what is being deleted without it (Neutron's way: the
database row goes, the returning agent's reconcile removes what it holds that no row names any more).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction

from . import events, selectors, services
from .choices import ObjectStatus
from .models import DhcpServer, Instance, Network, Router
from .queue import enqueue_on_commit


def delete_unshared(networks: Iterable[Network]) -> list[int]:
    """Delete the rows of those ``networks`` no node holds a DHCP server or an instance of; return their ids.

    Runs in the caller's transaction (or its own). Routers that had a port on them are converged after commit.
    """
    networks = list(networks)
    with transaction.atomic():
        torn = [n.pk for n in networks]
        elsewhere = {*DhcpServer.objects.filter(network__in=torn).values_list("network", flat=True),
                     *Instance.objects.filter(network__in=torn).values_list("network", flat=True)}
        networks = [n for n in networks if n.pk not in elsewhere]
        ids = [n.pk for n in networks]
        if not ids:
            return []
        out = [(n.tenant_id, "network.deleted", selectors.network_data(n)) for n in networks]
        # Routers with a port on these networks lose it with the rows (the interface cascades): converge them after.
        routed = list(Router.objects.filter(interfaces__subnet__network__in=ids).exclude(status=ObjectStatus.DELETING)
                      .distinct().values_list("pk", "node"))
        Instance.objects.filter(network__in=ids).delete()  # instances protect their subnet; they go first
        Network.objects.filter(pk__in=ids).delete()
        services.tenant_finish_deletion(tenant_ids={n.tenant_id for n in networks})
        events.publish_many(out)
        for router_id, node in routed:
            enqueue_on_commit("tenants.jobs.realise_router", router_id, node=node)
    return ids
