"""The host loses things behind the agent's back: a reboot (namespaces and processes gone, disk kept) and the
state directory removed while everything runs. The database is the truth; the agent rebuilds from it."""

from __future__ import annotations

import os
import shutil
import signal
import time

import pytest
from django.utils import timezone
from faults_helpers import (
    build,
    converged,
    expected_counts,
    host_counts,
    lease_mismatches,
    simulate_reboot,
    wait_for,
)

from tenants.choices import LeaseEventKind
from tenants.hostspecs import driver
from tenants.models import Instance, LeaseEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host]


def _held_ips(networks) -> dict[str, str | None]:
    d = driver()
    out = {}
    for instance in Instance.objects.filter(network__in=networks):
        held = d.instance_lease(instance.kernel_id)
        out[instance.hostname] = str(held.ip) if held else None
    return out


def _event_counts(since) -> dict[str, int]:
    return {kind: LeaseEvent.objects.filter(kind=kind, at__gte=since).count() for kind in LeaseEventKind.values}


@pytest.mark.parametrize("agent_mode", ["agent keeps running", "agent restarted"])
def test_reboot_rebuilds_everything_and_instances_keep_their_ips(agent_mode, start_agent, report):
    # The periodic reconcile is a backstop: anything the monitor's restarts leave in error is retried by it.
    agent = start_agent(reconcile_seconds=5)
    built = [build(f"rb{n}", f"10.65.{n}.0/24", 3) for n in range(3)]
    networks = [n for n, _ in built]
    assert wait_for(lambda: converged(networks), 60), "setup did not converge"
    ips = {i.hostname: i.ip_address for _, made in built for i in made}
    assert _held_ips(networks) == ips
    lease_files = {n.kernel_id: driver().network_leases(n.kernel_id) for n in networks}

    if agent_mode == "agent restarted":
        agent.kill()  # the reboot takes the agent with it
    since = timezone.now()
    if agent.alive():
        # A reboot is instantaneous for the agent: freeze it while we wipe, or its monitor would race the wipe
        # (restart a dnsmasq in a namespace we are about to delete). It may be mid-job when it thaws.
        os.kill(agent.pid, signal.SIGSTOP)
    try:
        wiped = simulate_reboot()
    finally:
        if agent.alive():
            os.kill(agent.pid, signal.SIGCONT)
    left = host_counts()
    start = time.monotonic()
    ready = None
    if agent_mode == "agent restarted":
        ready = start_agent(wait=False).wait_ready()  # the worker registers after the start-up reconcile
    took = wait_for(lambda: converged(networks), 60)
    total = round(time.monotonic() - start, 3)
    held = _held_ips(networks)
    report(injected=f"reboot ({agent_mode}): {wiped}, state dir kept", host_after_wipe=left,
           agent_ready_after_s=ready, rebuilt_after_s=took, wall_s=total,
           same_ip=sum(held[h] == ip for h, ip in ips.items()), instances=len(ips),
           lease_events_since_reboot=_event_counts(since), host=host_counts(),
           expected=expected_counts(networks))
    assert left["namespaces"] == left["dnsmasq"] == left["udhcpc"] == 0
    assert took is not None, "the agent did not rebuild the host"
    assert held == ips, "every instance must re-lease its same IP"
    assert host_counts() == expected_counts(networks)
    assert not lease_mismatches(networks)
    for network in networks:  # dnsmasq's lease state survived: the same MACs on the same addresses
        before = {(str(e.ip), e.mac) for e in lease_files[network.kernel_id]}
        assert before <= {(str(e.ip), e.mac) for e in driver().network_leases(network.kernel_id)}


def test_state_dir_removed_is_rebuilt_from_the_database(start_agent, report):
    start_agent(reconcile_seconds=3)
    built = [build(f"sd{n}", f"10.66.{n}.0/24", 3) for n in range(2)]
    networks = [n for n, _ in built]
    assert wait_for(lambda: converged(networks), 60), "setup did not converge"
    ips = {i.hostname: i.ip_address for _, made in built for i in made}
    state_dir = driver().config.state_dir

    since = timezone.now()
    start = time.monotonic()
    shutil.rmtree(state_dir)
    took = wait_for(lambda: converged(networks) and host_counts() == expected_counts(networks)
                    and not lease_mismatches(networks), 60)
    total = round(time.monotonic() - start, 3)
    held = _held_ips(networks)
    report(injected=f"rm -rf {state_dir} with {len(networks)} networks, {len(ips)} instances running",
           rebuilt_after_s=took, wall_s=total, same_ip=sum(held[h] == ip for h, ip in ips.items()),
           instances=len(ips), lease_events_since=_event_counts(since), host=host_counts(),
           expected=expected_counts(networks), lease_mismatches=lease_mismatches(networks),
           stray_pids=driver().scan_host().stray_pids)
    assert took is not None, "state directory not rebuilt (or strays/mismatches left)"
    assert held == ips, "instances must keep their IPs (reservations come from the database)"
    assert not driver().scan_host().stray_pids
