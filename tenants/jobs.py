"""RQ entry points: the functions the services, the agent and reconcile enqueue by dotted path.

Why a module of names only: ``tenants.jobs.<name>`` is a contract with every job already queued in Redis (a job
enqueued before an upgrade still finds its function after it) and with the agent's monitor, so these paths
stay put while the work behind them lives where it belongs — host convergence in ``convergence`` (batches,
locks, outcomes recorded through ``status``) and the both-ways pass in ``reconcile``.
"""

from __future__ import annotations

from .convergence import (
    destroy_instance,
    destroy_network,
    destroy_network_batch,
    realise_instance,
    realise_instance_batch,
    realise_network,
    realise_network_batch,
    sync_leases,
)
from .reconcile import reconcile
from .router_convergence import destroy_router, realise_router

__all__ = ["destroy_instance", "destroy_network", "destroy_network_batch", "destroy_router", "realise_instance",
           "realise_instance_batch", "realise_network", "realise_network_batch", "realise_router", "reconcile",
           "sync_leases"]
