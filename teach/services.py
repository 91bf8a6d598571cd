"""Writes and agent requests of the teaching tools. Views and consumers call these; these enqueue agent jobs.

The web process never reads kernel state or spawns anything: ``inspect`` waits (briefly) for an agent job's
result, diagnostics and shells are agent jobs that stream to the channel layer. Access is checked before
anything is enqueued (``teach.targets.resolve`` → tenant selectors), and again by the consumers on connect.
"""

from __future__ import annotations

import logging
import secrets
import time
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from redis.exceptions import RedisError
from rq.results import Result

from tenants import routers
from tenants import services as tenant_services
from tenants.choices import ObjectStatus, Role
from tenants.models import DhcpServer, FloatingIP, Network, Node, Router
from tenants.nodes import live_nodes
from tenants.queue import agent_queue, enqueue_on_commit
from tenants.scheduling import instance_node, network_nodes

from . import compare, diagnostics, failover_lab, ipv6_lab, selectors
from .models import Classroom, DiagnosticRun, Lab, LabKind, RunStatus, ShellSession, TargetKind
from .targets import Target

log = logging.getLogger(__name__)

INSPECT_WAIT_SECONDS = 5
RESULT_READ_SECONDS = 3  # one blocking read for a job's result: below the Redis connection's socket timeout
MAX_ACTIVE_DIAGNOSTICS = 2  # per user: queued or running; the agent runs jobs one at a time


class AgentUnavailable(Exception):
    """The node's agent did not answer in time (not running, or busy); the message says so."""


def _agent_answer(node: str, func: str, *args: Any, what: str, wait: int = INSPECT_WAIT_SECONDS) -> Any:
    """Enqueue ``func(*args)`` on ``node``'s agent and wait (``wait`` seconds) for its return value."""
    return _agent_answers([(node, args)], func, what=what, wait=wait)[0]


def _agent_answers(calls: list[tuple[str, tuple[Any, ...]]], func: str, *, what: str,
                   wait: int = INSPECT_WAIT_SECONDS) -> list[Any]:
    """``func(*args)`` on each ``(node, args)``'s agent, all enqueued first so the nodes answer at once; their
    return values in order, once all came (within ``wait`` seconds of the first enqueue)."""
    deadline = time.monotonic() + wait
    try:
        # agent_queue, not django_rq.get_queue: RQ_QUEUES names this node's own queue only.
        queued = [(node, agent_queue(node).enqueue(func, *args, ttl=wait * 2, result_ttl=60, failure_ttl=300,
                                                   job_timeout=30)) for node, args in calls]
        results = []
        for node, job in queued:
            # In blocking reads shorter than the connection's socket timeout (redis-py's 5 s default): one read
            # of ``wait`` > 5 s failed with "Timeout reading from socket" whenever the agent took longer than 5 s.
            result = None
            while result is None and (left := deadline - time.monotonic()) > 0:
                result = job.latest_result(timeout=max(1, min(RESULT_READ_SECONDS, round(left))))
            if result is None:
                for _, pending in queued:
                    pending.cancel()
                raise AgentUnavailable(f"the agent of node {node!r} did not answer within {wait} s; "
                                       "is it running (manage.py agent)?")
            results.append(result)
    except RedisError as exc:
        raise AgentUnavailable(f"the job queue is unavailable ({exc})") from exc
    failed = next((r for r in results if r.type != Result.Type.SUCCESSFUL), None)
    if failed is not None:
        raise AgentUnavailable(f"the agent could not read {what}: {(failed.exc_string or '').strip()[-300:]}")
    return [r.return_value for r in results]


def inspect(*, target: Target) -> dict[str, Any]:
    """Kernel state of ``target``'s namespace, read by the agent of its node (waits up to a few seconds).

    The caller has resolved ``target`` for the requesting user already (``teach.targets.resolve``).
    """
    return _agent_answer(target.node, "teach.jobs.inspect_target", target.kind, target.object_id,
                         what="the namespace")


def router_inspect(*, router: Router) -> dict[str, Any]:
    """Kernel state of a router (namespace, NAT counters, conntrack), read by the agent of its node.

    The caller has resolved ``router`` through ``tenants.selectors.routers_for_user``.
    """
    return _agent_answer(router.node, "teach.jobs.inspect_router", router.pk, what="the router")


def diagnostic_group() -> str:
    """A fresh channel-layer group for one websocket's diagnostic output."""
    return f"teach.diag.{secrets.token_hex(8)}"


def diagnostic_start(*, user: AbstractBaseUser, target: Target, action: str, args: dict[str, Any] | None,
                     group: str) -> DiagnosticRun:
    """Validate and record a diagnostic, then have the agent run it (output streamed to ``group``)."""
    try:
        clean = diagnostics.validate(action, args, target.kind)
    except diagnostics.DiagnosticError as exc:
        raise ValidationError(str(exc), code="invalid") from None
    # Only recent runs count: a run stuck "queued" because the agent was down must not block the user forever.
    recent = timezone.now() - timedelta(minutes=2)
    active = DiagnosticRun.objects.filter(user=user, status__in=[RunStatus.QUEUED, RunStatus.RUNNING],
                                          created_at__gte=recent)
    if active.count() >= MAX_ACTIVE_DIAGNOSTICS:
        raise ValidationError("Your previous diagnostics are still running; wait for them to finish.", code="busy")
    with transaction.atomic():
        run = DiagnosticRun.objects.create(user=user, kind=target.kind, object_id=target.object_id,
                                           namespace=target.namespace, action=action, args=clean, group=group)
        enqueue_on_commit("teach.jobs.run_diagnostic", run.pk, node=target.node)
    return run


def shell_allowed(user: AbstractBaseUser) -> bool:
    """Shells are for superusers, and only when ``NETDASH_SHELL_ENABLED`` is on."""
    return bool(settings.NETDASH_SHELL_ENABLED and user.is_authenticated and user.is_superuser)


def shell_open(*, user: AbstractBaseUser, target: Target, reply_channel: str) -> ShellSession:
    """Record a shell session and ask the agent to start it; output goes to ``reply_channel``."""
    if not shell_allowed(user):
        raise PermissionDenied("The namespace shell is for superusers and must be enabled in settings.")
    with transaction.atomic():
        session = ShellSession.objects.create(user=user, username=user.get_username(), kind=target.kind,
                                              object_id=target.object_id, namespace=target.namespace)
        enqueue_on_commit("teach.jobs.shell_session", session.pk, reply_channel, node=target.node)
    log.info("shell session %s: %s opened %s", session.pk, session.username, session.namespace)
    return session


def shell_hangup(*, session_id: int) -> None:
    """The browser went away: mark the session so the agent ends it even if it never heard the close."""
    ShellSession.objects.filter(pk=session_id, ended_at=None).update(end_reason="browser disconnected")


# --- labs ----------------------------------------------------------------------------------------------

def lab_lifetime(classroom: Classroom | None) -> timedelta:
    """How long a lab lives: the class's own setting, else ``NETDASH_LAB_MINUTES``."""
    minutes = classroom.lab_minutes if classroom is not None and classroom.lab_minutes else None
    return timedelta(minutes=minutes or settings.NETDASH_LAB_MINUTES)


def lab_start(*, user: AbstractBaseUser, kind: str = LabKind.OVERLAP) -> Lab:
    """A private lab: two new tenants (the learner their only member), each with a network on the same CIDR and
    one instance, realised by the agent after commit and torn down when the lab expires.

    The routed lab also puts each network behind a router of its own tenant, with its gateway on an external
    network with a simulated upstream (TEST-NET-3, no route out) that a third tenant of the lab holds, so both
    instances — same address — reach the same upstream, each translated by its own router.

    The three-modes IPv6 lab instead is one tenant with an isolated IPv6-only network per mode
    (``_lab_ipv6_modes``).

    The tenants are created through the tenant services with quotas of one, so a learner cannot grow a lab into
    anything bigger; the learner is a plain member, so cannot add anyone else to it.
    """
    if kind not in LabKind.values:
        raise ValidationError(f"Unknown lab {kind!r}; choose one of {', '.join(LabKind.values)}.", code="kind")
    if not selectors.can_start_lab(user):
        raise PermissionDenied("Labs are not enabled for any of your classes; ask your instructor.")
    if kind == LabKind.FAILOVER and (why := failover_lab_unavailable()):
        raise ValidationError(why, code="nodes")
    classroom = selectors.lab_classroom(user)
    quota = classroom.lab_quota if classroom is not None else 1
    with transaction.atomic():
        # One learner's concurrent clicks serialise here, so the quota holds.
        get_user_model().objects.select_for_update().filter(pk=user.pk).first()
        if Lab.objects.filter(learner=user).count() >= quota:
            raise ValidationError(f"You already run {quota} lab(s), the limit of your class; end one first.",
                                  code="quota")
        lab = Lab.objects.create(learner=user, classroom=classroom, kind=kind,
                                 expires_at=timezone.now() + lab_lifetime(classroom))
        build = {LabKind.IPV6: _lab_ipv6_modes, LabKind.FAILOVER: _lab_failover}.get(kind)
        if build is not None:
            build(lab, user)
            log.info("lab %s (%s) started by %s, expires %s", lab.pk, kind, user, lab.expires_at)
            return lab
        external = _lab_upstream(lab, user) if kind == LabKind.ROUTED else None
        for side in selectors.LAB_SIDES:
            slug = selectors.lab_slug(lab, side)
            tenant = tenant_services.tenant_create(name=f"Lab {lab.pk} {side.upper()}", slug=slug, actor=user,
                                                   quota_networks=1, quota_subnets=1, quota_instances=1,
                                                   quota_routers=1)
            tenant_services.membership_set(tenant=tenant, user=user, role=Role.MEMBER, actor=user)
            network = tenant_services.network_create(
                tenant=tenant, name=selectors.LAB_NETWORK, actor=user,
                subnet={"cidr": selectors.LAB_CIDR, "domain_name": f"{slug}.internal"},
            )
            if external is not None:
                router = routers.router_create(tenant=tenant, name=f"{slug}-router", external_network=external,
                                               actor=user)
                routers.router_interface_add(router=router, subnet=network.subnets.get(), actor=user)
            tenant_services.instance_create(network=network, hostname=f"{slug}-vm", actor=user)
            lab.tenants.add(tenant)
    log.info("lab %s (%s) started by %s, expires %s", lab.pk, kind, user, lab.expires_at)
    return lab


def _lab_ipv6_modes(lab: Lab, user: AbstractBaseUser) -> None:
    """The three-modes lab: one tenant of the learner's with an isolated IPv6-only network per mode (SLAAC,
    DHCPv6-stateless, DHCPv6-stateful), each with one instance; quotas of exactly three, so nothing more fits."""
    count = len(ipv6_lab.MODES)
    slug = selectors.lab_slug(lab, selectors.LAB_IPV6_SIDE)
    tenant = tenant_services.tenant_create(name=f"Lab {lab.pk} IPv6", slug=slug, actor=user, quota_networks=count,
                                           quota_subnets=count, quota_instances=count, quota_routers=0)
    tenant_services.membership_set(tenant=tenant, user=user, role=Role.MEMBER, actor=user)
    lab.tenants.add(tenant)
    for mode, name, cidr in ipv6_lab.MODES:
        network = tenant_services.network_create(tenant=tenant, name=name, actor=user, subnet={
            "cidr": cidr, "ipv6_ra_mode": mode, "ipv6_address_mode": mode})
        tenant_services.instance_create(network=network, hostname=f"{slug}-{name}", actor=user)


FAILOVER_MIN_NODES = 2


def failover_lab_unavailable() -> str:
    """Why the failover lab cannot start now ("" when it can): it needs two live DHCP nodes with a VTEP, one for
    each of its network's servers, joined by the overlay."""
    count = live_nodes().filter(dhcp=True).exclude(vtep_address=None).count()
    if count >= FAILOVER_MIN_NODES:
        return ""
    return (f"This lab needs {FAILOVER_MIN_NODES} live DHCP nodes joined by the overlay (a VTEP each); {count} "
            "run now. Start several node agents, e.g. `NODES=3 make run`, and try again.")


def _lab_failover(lab: Lab, user: AbstractBaseUser) -> None:
    """The failover lab: one tenant, one IPv4 network whose two DHCP servers the scheduler puts on two distinct
    dhcp nodes, and one instance on a compute node; with two servers apart, at least one of them is on another
    node than the instance, so a lease or a renewal really crosses the VXLAN. Checked here (inside the lab's
    transaction, so a placement that does not hold rolls the whole lab back): nodes come and go."""
    slug = selectors.lab_slug(lab, failover_lab.SIDE)
    tenant = tenant_services.tenant_create(name=f"Lab {lab.pk} failover", slug=slug, actor=user, quota_networks=1,
                                           quota_subnets=1, quota_instances=1, quota_routers=0)
    tenant_services.membership_set(tenant=tenant, user=user, role=Role.MEMBER, actor=user)
    lab.tenants.add(tenant)
    network = tenant_services.network_create(tenant=tenant, name=failover_lab.NETWORK, actor=user,
                                             subnet={"cidr": failover_lab.CIDR, "domain_name": f"{slug}.internal"})
    servers = set(DhcpServer.objects.filter(network=network).values_list("node", flat=True))
    if len(servers) < FAILOVER_MIN_NODES:
        raise ValidationError(f"The scheduler placed this network's DHCP servers on {len(servers)} node(s); the lab "
                              f"needs {FAILOVER_MIN_NODES}. {failover_lab_unavailable()}".strip(), code="nodes")
    instance = tenant_services.instance_create(network=network, hostname=f"{slug}-vm", actor=user)
    if not servers - {instance_node(instance)}:
        raise ValidationError("No DHCP server of the lab is on another node than its instance.", code="nodes")


def failover_lab_network(lab: Lab) -> Network | None:
    """The failover lab's network (None before it exists or once it is going)."""
    return (Network.objects.filter(tenant__in=lab.tenants.all(), name=failover_lab.NETWORK)
            .exclude(status=ObjectStatus.DELETING).first())


def failover_lab_topology(network: Network) -> failover_lab.Topology | None:
    """What the database placed: VNI, every node the network is on with its VTEP, each server's node and address
    (rank 0 answers from the subnet's DHCP address, the standby from its own), and the instance (None: no
    instance yet)."""
    instance = network.instances.exclude(status=ObjectStatus.DELETING).order_by("pk").first()
    subnet = network.subnets.order_by("pk").first()
    if instance is None or subnet is None or network.vni is None:
        return None
    servers = []
    for server in DhcpServer.objects.filter(network=network).prefetch_related("addresses").order_by("rank"):
        own = next((a.address for a in server.addresses.all() if a.subnet_id == subnet.pk), "")
        servers.append(failover_lab.Server(server.rank, server.node, subnet.dhcp_address if server.rank == 0
                                           else own))
    vteps = dict(Node.objects.filter(name__in=network_nodes(network)).values_list("name", "vtep_address"))
    return failover_lab.Topology(network.vni, {k: v or "" for k, v in vteps.items()}, servers, instance.hostname,
                                 instance.mac_address, instance.ip_address or "", instance_node(instance))


def _failover_lab_owned(lab: Lab, user: AbstractBaseUser) -> Network:
    if lab.learner_id != user.pk:
        raise PermissionDenied("Only the learner who started this lab can fail or restore its servers.")
    if lab.kind != LabKind.FAILOVER:
        raise ValidationError("This lab has no DHCP failover.", code="kind")
    network = failover_lab_network(lab)
    if network is None:
        raise ValidationError("The lab's network is gone.", code="gone")
    return network


def failover_lab_fail(*, lab: Lab, user: AbstractBaseUser) -> DhcpServer:
    """Fail the server that leased the instance's current address: the agent of the instance's node reads the
    client's lease (its server id), the database marks that server failed (its node's monitor and reconcile then
    leave it down), and after commit its node's agent SIGKILLs its dnsmasq and has the client nudged once.

    Only one server of the lab may be failed at a time: the other is the one that must answer."""
    network = _failover_lab_owned(lab, user)
    topology = failover_lab_topology(network)
    if topology is None:
        raise ValidationError("The instance is still being created.", code="building")
    try:
        seen = _agent_answer(topology.instance_node, "teach.jobs.failover_lab_observe", network.pk,
                             what="the instance's lease", wait=FAILOVER_OBSERVE_WAIT_SECONDS)
    except AgentUnavailable as exc:
        raise ValidationError(str(exc), code="agent") from None
    lease = (seen.get("client") or {}).get("lease") if not seen.get("error") else None
    leased_by = next((s for s in topology.servers if lease and s.address == lease.get("server_id")), None)
    if leased_by is None:
        raise ValidationError("The instance holds no lease from one of the lab's servers yet; wait for it.",
                              code="no_lease")
    with transaction.atomic():
        servers = list(DhcpServer.objects.select_for_update().filter(network=network).order_by("rank"))
        if any(s.failed_at is not None for s in servers):
            raise ValidationError("A server of this lab is failed already; restore it first.", code="failed")
        server = next((s for s in servers if s.rank == leased_by.rank and s.node == leased_by.node), None)
        if server is None:
            raise ValidationError("The server that leased moved meanwhile; try again.", code="moved")
        server.failed_at = timezone.now()
        server.save(update_fields=["failed_at"])
        enqueue_on_commit("teach.jobs.failover_lab_fail", server.pk, node=server.node)
    log.info("failover lab %s: server %s failed by %s", lab.pk, server, user)
    return server


def failover_lab_restore(*, lab: Lab, user: AbstractBaseUser) -> list[DhcpServer]:
    """Restore the lab's failed server(s): clear the mark, and its node's agent realises the network again, which
    starts its dnsmasq (seeded from the database as usual)."""
    network = _failover_lab_owned(lab, user)
    with transaction.atomic():
        failed = list(DhcpServer.objects.select_for_update().filter(network=network).exclude(failed_at=None))
        DhcpServer.objects.filter(pk__in=[s.pk for s in failed]).update(failed_at=None)
        for server in failed:
            enqueue_on_commit("tenants.jobs.realise_network", network.pk, node=server.node)
    log.info("failover lab %s: %d server(s) restored by %s", lab.pk, len(failed), user)
    return failed


FAILOVER_OBSERVE_WAIT_SECONDS = 10  # every node asked at once; a loaded machine may have a job ahead of ours


def _failover_lab_notice(lab: Lab) -> dict[str, Any]:
    """The failover lab, observed by the agent of every node the network is on (in node order): the findings
    ``failover_lab.facts`` derives from those observations alone, the observations (``nodes``) and the servers."""
    network = failover_lab_network(lab)
    topology = failover_lab_topology(network) if network is not None else None
    if topology is None or network.status != ObjectStatus.ACTIVE:
        return {"facts": {}, "nodes": [], "servers": [], "error": "The network and its instance are still being built."}
    nodes = sorted(topology.vteps)
    try:
        observed = _agent_answers([(node, (network.pk,)) for node in nodes], "teach.jobs.failover_lab_observe",
                                  what="the nodes", wait=FAILOVER_OBSERVE_WAIT_SECONDS)
    except AgentUnavailable as exc:
        return {"facts": {}, "nodes": [], "servers": [], "error": str(exc)}
    for node, seen in zip(nodes, observed, strict=True):
        if seen.get("error"):
            return {"facts": {}, "nodes": [], "servers": [], "error": f"{node}: {seen['error']}"}
    servers = [{"rank": s.rank, "node": s.node, "address": s.address} for s in topology.servers]
    return {"facts": failover_lab.facts(topology, [failover_lab.observation(o) for o in observed]),
            "nodes": observed, "servers": servers, "error": ""}


def _lab_upstream(lab: Lab, user: AbstractBaseUser):
    """The routed lab's outside world: a tenant of the lab holding an external network with a simulated upstream
    at ``LAB_UPSTREAM`` (the routers' default gateway). The learner is not a member: they only see it through
    their routers' gateways and what the upstream answers."""
    tenant = tenant_services.tenant_create(name=f"Lab {lab.pk} upstream", slug=selectors.lab_slug(lab, "up"),
                                           actor=user, quota_networks=1, quota_subnets=1, quota_instances=0,
                                           quota_routers=0)
    lab.tenants.add(tenant)
    return routers.external_network_create(
        tenant=tenant, name=selectors.LAB_EXTERNAL_NETWORK, simulated_upstream=True, actor=user,
        subnet={"cidr": selectors.LAB_EXTERNAL_CIDR, "gateway": selectors.LAB_UPSTREAM, "enable_dhcp": False})


def lab_end(*, lab: Lab, actor: AbstractBaseUser | None = None) -> None:
    """Tear the lab down through ``tenant_delete`` (the agent removes its namespaces, then the tenant rows go)
    and delete the lab row at once: the learner may start the next one while the host still cleans up.

    The routed lab's external network can only go once nothing holds an address on it, so first its floating IPs
    are released (the lab's own, and any another tenant allocated there) and the routers' gateways cleared, then
    the routers deleted; their jobs are queued before the networks'."""
    with transaction.atomic():
        locked = Lab.objects.select_for_update().filter(pk=lab.pk).first()
        if locked is None:
            return  # ended meanwhile (the sweep and the learner's click)
        tenants = list(locked.tenants.order_by("slug"))
        for fip in FloatingIP.objects.filter(Q(tenant__in=tenants) | Q(network__tenant__in=tenants)):
            routers.floating_ip_release(floating_ip=fip, actor=actor)
        for router in Router.objects.filter(Q(tenant__in=tenants) | Q(external_network__tenant__in=tenants)):
            routers.router_clear_gateway(router=router, actor=actor)
        for router in Router.objects.filter(tenant__in=tenants).exclude(status=ObjectStatus.DELETING):
            routers.router_delete(router=router, actor=actor)
        for tenant in tenants:
            tenant_services.tenant_delete(tenant=tenant, actor=actor)
        locked.delete()
    log.info("lab %s ended", lab.pk)


def lab_sweep() -> int:
    """End every expired lab (the agent enqueues this periodically); returns how many."""
    expired = list(Lab.objects.filter(expires_at__lte=timezone.now()))
    for lab in expired:
        lab_end(lab=lab)
    return len(expired)


def lab_notice(*, lab: Lab) -> dict[str, Any]:
    """What to notice right now, from the kernel: both instance namespaces read by the agent and compared.

    ``facts`` is keyed as ``teach.compare.facts`` (the page checks steps off by key); ``error`` says why there
    is nothing to compare yet (still building, or the agent is busy).
    """
    if lab.kind == LabKind.IPV6:
        return _ipv6_lab_notice(lab)
    if lab.kind == LabKind.FAILOVER:
        return _failover_lab_notice(lab)
    sides = selectors.lab_sides(lab)
    instances = [side.instance for side in sides if side.instance is not None]
    if len(instances) != 2 or any(i.status != ObjectStatus.ACTIVE for i in instances):
        return {"facts": {}, "error": "The instances are still being created."}
    if lab.kind == LabKind.ROUTED:
        if any(s.router is None or s.router.status != ObjectStatus.ACTIVE for s in sides):
            return {"facts": {}, "error": "The routers are still being built."}
        try:
            return _agent_answer(sides[0].router.node, "teach.jobs.routed_lab_notice", lab.pk, what="the lab")
        except AgentUnavailable as exc:
            return {"facts": {}, "error": str(exc)}
    try:
        a, b = (inspect(target=Target(TargetKind.INSTANCE, i.network, i)) for i in instances)
    except AgentUnavailable as exc:
        return {"facts": {}, "error": str(exc)}
    if a.get("error") or b.get("error"):
        return {"facts": {}, "error": a.get("error") or b.get("error")}
    return {"facts": compare.facts(*compare.compare(a, b)), "error": ""}


IPV6_OBSERVE_WAIT_SECONDS = 10  # the agent solicits an RA (answered within a few seconds) and reads the namespace


def _ipv6_lab_notice(lab: Lab) -> dict[str, Any]:
    """The three-modes lab, observed by each instance's own agent: RA flags, addresses, client and lease rows
    (``sides``, in ``ipv6_lab.MODES`` order), and the findings ``ipv6_lab.facts`` derives from them alone."""
    modes = selectors.lab_ipv6_modes(lab)
    instances = [m.instance for m in modes]
    if len(modes) != len(ipv6_lab.MODES) or any(i is None or i.status != ObjectStatus.ACTIVE for i in instances):
        return {"facts": {}, "sides": [], "error": "The instances are still being created."}
    sides = []
    try:
        for (mode, _name, _cidr), instance in zip(ipv6_lab.MODES, instances, strict=True):
            side = _agent_answer(instance.node, "teach.jobs.ipv6_lab_observe", instance.pk, mode,
                                 what=f"instance {instance.hostname}", wait=IPV6_OBSERVE_WAIT_SECONDS)
            if side.get("error"):
                return {"facts": {}, "sides": [], "error": side["error"]}
            sides.append(side)
    except AgentUnavailable as exc:
        return {"facts": {}, "sides": [], "error": str(exc)}
    return {"facts": ipv6_lab.facts([ipv6_lab.Observation(**s) for s in sides]), "sides": sides, "error": ""}


def classroom_labs_set(*, classroom: Classroom, enabled: bool, actor: AbstractBaseUser) -> Classroom:
    """Turn labs on or off for a class (its instructors and superusers). Running labs are left to expire."""
    if not selectors.classrooms_taught(actor).filter(pk=classroom.pk).exists():
        raise PermissionDenied("Only this class's instructors can turn its labs on or off.")
    Classroom.objects.filter(pk=classroom.pk).update(labs_enabled=enabled)
    classroom.labs_enabled = enabled
    return classroom
