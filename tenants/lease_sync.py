"""Bring the Lease table in line with a network's dnsmasq lease file, recording what changed.

Why a state sync and not an event log: dnsmasq's lease file is the truth about who holds what. Diffing it
against the active Lease rows is idempotent — a missed inotify event, a Redis outage or an agent restart is
repaired by the next sync — and each difference becomes exactly one LeaseEvent and one published event.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from . import events, metrics, selectors
from .choices import LeaseEventKind, LeaseState, ObjectStatus
from .host import DnsmasqLease
from .models import Instance, Lease, LeaseEvent, Network
from .status import Outcome, record

EVENT_NAMES = {
    LeaseEventKind.ADD: "lease.added",
    LeaseEventKind.RENEW: "lease.renewed",
    LeaseEventKind.RELEASE: "lease.released",
    LeaseEventKind.EXPIRE: "lease.expired",
}


@dataclass(frozen=True)
class LeaseChange:
    """One recorded difference (returned for logs, tests and the reconcile report)."""

    kind: str
    ip: str
    mac: str
    hostname: str


def _expiry(entry: DnsmasqLease) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(entry.expiry, tz=dt.UTC) if entry.expiry else None


def sync_network_leases(network: Network, entries: Iterable[DnsmasqLease], *,
                        changed_at: float | None = None) -> list[LeaseChange]:
    """Apply the lease file's ``entries`` to the database for ``network``; return the changes made.

    ``changed_at`` (Unix time the lease file was written): each event's file → publish latency is observed once
    it has been sent, after the commit. Lines with expiry 0 are skipped: an HA DHCP server's lease file is
    pre-seeded with every reservation that way (``dnsmasq.seed_leases``), and no lease time we configure is
    infinite, so such a line was never an ACK.

    With several DHCP servers each node syncs its own server's file, which holds only the leases that server
    ACKed: a row is then renewed only by a later expiry (the last ACK wins, whichever server sent it) and ends
    only when it has expired, not because this file lacks it (the other server may hold it).
    """
    entries = [e for e in entries if e.expiry != 0]
    now = timezone.now()
    changes: list[LeaseChange] = []
    with transaction.atomic():
        # Lock the network row only (``of``: a join would lock the tenant too), and as NO KEY UPDATE: an
        # instance_create holding tenant → subnet inserts an Instance whose foreign key takes KEY SHARE on this
        # row. FOR UPDATE of network + tenant deadlocked 41 of 50 concurrent creates on PostgreSQL
        # (tests/faults/test_load.py); syncs of one network still exclude each other.
        network = (Network.objects.select_for_update(of=("self",), no_key=True).select_related("tenant")
                   .get(pk=network.pk))
        subnets = list(network.subnets.all())
        several_servers = network.dhcp_servers.count() > 1
        instances = {i.mac_address: i for i in Instance.objects.filter(network=network)}
        active = {
            (lease.ip_address, lease.mac_address): lease
            for lease in Lease.objects.filter(subnet__in=subnets, state=LeaseState.ACTIVE).select_related("subnet")
        }

        def record(lease: Lease, kind: str) -> None:
            event = LeaseEvent.objects.create(subnet=lease.subnet, lease=lease, kind=kind, ip_address=lease.ip_address,
                                              mac_address=lease.mac_address, hostname=lease.hostname)
            data = selectors.lease_data(lease) | {"event": selectors.lease_event_data(event)}
            events.publish(network.tenant_id, EVENT_NAMES[kind], data)
            if changed_at is not None:  # on_commit callbacks run in order: this one after the send above
                transaction.on_commit(lambda: metrics.lease_published(changed_at, time.time()))
            changes.append(LeaseChange(kind, lease.ip_address, lease.mac_address, lease.hostname))

        for entry in entries:
            ip = str(entry.ip)
            subnet = next((s for s in subnets if ipaddress.ip_address(ip) in s.ip_network), None)
            if subnet is None:
                continue
            expires = _expiry(entry)
            hostname = entry.hostname or ""
            current = active.pop((ip, entry.mac), None)
            if current is not None:
                if several_servers and expires is not None and current.expires_at is not None \
                        and expires <= current.expires_at:
                    continue  # an older ACK (another server renewed since)
                if current.expires_at != expires or current.hostname != hostname:
                    current.expires_at, current.hostname = expires, hostname
                    current.save(update_fields=["expires_at", "hostname", "updated_at"])
                    record(current, LeaseEventKind.RENEW)
                continue
            # The address moved to another MAC (or a stale row survived): close the old one first.
            for key in [k for k in active if k[0] == ip]:
                stale = active.pop(key)
                stale.state = LeaseState.RELEASED
                stale.save(update_fields=["state", "updated_at"])
                record(stale, LeaseEventKind.RELEASE)
            lease = Lease.objects.create(subnet=subnet, instance=instances.get(entry.mac), ip_address=ip,
                                         mac_address=entry.mac, hostname=hostname, expires_at=expires)
            record(lease, LeaseEventKind.ADD)

        for lease in active.values():
            expired = lease.expires_at is not None and lease.expires_at <= now
            if several_servers and not expired:
                continue
            lease.state = LeaseState.EXPIRED if expired else LeaseState.RELEASED
            lease.save(update_fields=["state", "updated_at"])
            record(lease, LeaseEventKind.EXPIRE if expired else LeaseEventKind.RELEASE)

        _mark_leased_instances_active(network)
    return changes


def _mark_leased_instances_active(network: Network) -> None:
    """An instance is active once it holds an active lease on the address IPAM gave it."""
    # A fixed number of queries whatever the number of instances (two, plus one read and one UPDATE in
    # ``record`` when some turned active): this runs inside the sync's write transaction, and a query per
    # waiting instance held SQLite's write lock through a whole burst (bench figure 3).
    leased = set(Lease.objects.filter(subnet__network=network, state=LeaseState.ACTIVE)
                 .values_list("mac_address", "ip_address"))
    waiting = Instance.objects.filter(network=network, status=ObjectStatus.PENDING).select_related("network")
    record(Outcome(i, ObjectStatus.ACTIVE, only_from=frozenset({ObjectStatus.PENDING}))
           for i in waiting if (i.mac_address, i.ip_address) in leased)
