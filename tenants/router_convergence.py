"""The host work behind the router jobs: converge a router's namespace and NAT table to its rows, under its lock.

Why apart from ``convergence``: a router spans networks (its ports sit on their segments, its gateway on an
external network), so it is realised *after* them: a job first converges each network it needs that is not
``active`` (under that network's lock, as ``realise_network`` does), then takes the router's own lock
(``locks.router_lock``) and calls ``ensure_router``, which is idempotent and rewrites the NAT table only when the
live one differs. Outcomes go through ``status.record`` like every other job's.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction

from . import events, selectors, services, status
from .choices import ObjectStatus
from .convergence import realise_network
from .hostspecs import driver, router_spec
from .locks import router_lock
from .models import FloatingIP, Router
from .status import Outcome, failure_reason

log = logging.getLogger(__name__)


def load_router(router_id: int) -> Router | None:
    """The router with everything ``hostspecs.router_spec`` reads, in a fixed number of queries."""
    router = (Router.objects.filter(pk=router_id)
              .select_related("tenant", "external_network", "external_subnet")
              .prefetch_related("interfaces__subnet__network").first())
    if router is None:
        return None
    # Floating IPs translated here: on its external network, associated to an instance behind one of its subnets.
    router.gateway_floating_ips = list(FloatingIP.objects.select_related("instance").filter(
        network_id=router.external_network_id, instance__subnet__router_interface__router=router))
    return router


def _networks_first(router: Router) -> None:
    """Converge every network the router has a port on (and its external network) that is not ``active`` yet, or
    whose home is another node: ``active`` then says its share is up there, not that this node has its segment
    (a router scheduled apart from the network's DHCP servers and instances)."""
    needed = {i.subnet.network for i in router.interfaces.all()}
    if router.external_network is not None:
        needed.add(router.external_network)
    for network in sorted(needed, key=lambda n: n.pk):
        if network.status != ObjectStatus.ACTIVE or network.node != settings.NETDASH_NODE:
            realise_network(network.pk)


def realise_router(router_id: int) -> str:
    """Create or update the router on the host: namespace, ports, gateway, SNAT and floating IPs."""
    router = load_router(router_id)
    if router is None or router.status == ObjectStatus.DELETING:
        return "skipped"
    try:
        _networks_first(router)
        with router_lock(router_id):
            router = load_router(router_id)
            if router is None or router.status == ObjectStatus.DELETING:
                return "skipped"
            driver().ensure_router(router_spec(router))
    except Exception as exc:
        log.exception("realise_router %s failed", router_id)
        if router is not None:
            status.record([Outcome(router, ObjectStatus.ERROR, failure_reason(exc))])
        raise
    status.record([Outcome(router, ObjectStatus.ACTIVE)])
    return "active"


def destroy_router(router_id: int) -> str:
    """Remove the router's namespace, then its rows (interfaces go with it; floating IPs were disassociated by
    ``routers.router_delete``, or go with their tenant), and the tenant too if it is being deleted and this was its
    last router or network. A failed teardown leaves it ``deleting`` with the reason, for reconcile."""
    with router_lock(router_id):
        router = Router.objects.select_related("tenant").filter(pk=router_id).first()
        if router is None:
            return "gone"
        try:
            driver().remove_routers([router.kernel_id])
        except Exception as exc:
            status.record([Outcome(router, ObjectStatus.ERROR, failure_reason(exc, "teardown failed"))])
            raise
        data = selectors.router_data(router)
        with transaction.atomic():
            router.delete()
            services.tenant_finish_deletion(tenant_ids=[router.tenant_id])
            events.publish(router.tenant_id, "router.deleted", data)
    return "deleted"
