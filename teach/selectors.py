"""Reads of the teaching tools: equivalent-command transcripts and the learners' labs.

Transcripts are computed in the web process, and that is safe: ``HostDriver.plan_network`` / ``plan_instance``
only build operation objects from a spec (names, argv, file contents) — no netlink, no file system, no process
(``tests/teach/test_commands.py::test_planning_is_pure`` holds it to that). The agent applies *the same* plan
(``ensure_*`` calls ``plan_*`` then ``apply_all``), and each operation's ``shell()`` renders its own fields, so
the commands shown cannot drift from what the driver executes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Q, QuerySet

from tenants.choices import ObjectStatus
from tenants.host import HostDriver
from tenants.host.kinds import overlay
from tenants.host.ops import AddrAdd, FloodList, LinkAddBridge, LinkMtu, LinkUp, NetnsAdd, Op, VethAdd, VxlanAdd
from tenants.hostspecs import (
    driver,
    fabric_driver,
    instance_spec,
    network_spec,
    router_spec,
    tunnel_spec,
    underlay_spec,
)
from tenants.models import Instance, Network, Router, Tenant
from tenants.router_convergence import load_router
from tenants.scheduling import network_nodes

from .ipv6_lab import MODES as IPV6_MODES
from .models import Classroom, Lab


@dataclass
class CommandBlock:
    """Commands realising one object on a fresh host, in the order the driver applies them."""

    title: str
    commands: list[str] = field(default_factory=list)
    anchor: str = ""


def _live_instances(network: Network) -> QuerySet[Instance]:
    return network.instances.exclude(status=ObjectStatus.DELETING).select_related("network").order_by("id")


def network_commands(network: Network, *, host_driver: HostDriver | None = None) -> list[CommandBlock]:
    """The network, then each of its instances: what a person types to rebuild it by hand. A network on the
    overlay gets a section per node instead: :func:`node_commands`."""
    d = host_driver or driver()
    nodes = sorted(network_nodes(network))
    if any(tunnel_spec(network, node) is not None for node in nodes):
        return [block for node in nodes for block in node_commands(network, node, host_driver=d)]
    blocks = [CommandBlock(f"network {network.name}", d.transcript_network(network_spec(network, network.node)),
                           f"network-{network.pk}")]
    for instance in _live_instances(network):
        blocks.append(CommandBlock(f"instance {instance.hostname}", d.transcript_instance(instance_spec(instance)),
                                   f"instance-{instance.pk}"))
    return blocks


def node_commands(network: Network, node: str, *, host_driver: HostDriver | None = None) -> list[CommandBlock]:
    """What ``node`` runs for the network, in the agent's order: the segment (and dnsmasq where it holds a DHCP
    server), the shared fabric and its own underlay, the network's VXLAN port with its flood list, then the
    instances it hosts. Each overlay step is preceded by a ``#`` line saying why (harmless to ``bash``)."""
    d = host_driver or driver()
    slug = f"{network.pk}-{node}"
    blocks = [CommandBlock(f"network {network.name} on node {node}",
                           d.transcript_network(network_spec(network, node)), f"network-{slug}")]
    tunnel, underlay = tunnel_spec(network, node), underlay_spec(node)
    if tunnel is not None and underlay is not None:  # the very plans ensure_fabric/_underlay/_tunnel apply
        ul_ns = d.names.underlay_ns(underlay.node_id)
        blocks += [
            CommandBlock("fabric (the wire between the nodes: shared, create it once)",
                         _explained(overlay.plan_fabric(fabric_driver().names), ul_ns), f"fabric-{slug}"),
            CommandBlock(f"underlay of node {node} (VTEP {underlay.vtep})",
                         _explained(overlay.plan_underlay(d.names, underlay), ul_ns), f"underlay-{slug}"),
            CommandBlock(f"tunnel of network {network.name} on node {node} (VNI {tunnel.vni})",
                         _explained(overlay.plan_tunnel(d.names, tunnel), ul_ns), f"tunnel-{slug}"),
        ]
    for instance in _live_instances(network).filter(node__in=[node, ""] if node == network.node else [node]):
        blocks.append(CommandBlock(f"instance {instance.hostname} on node {node}",
                                   d.transcript_instance(instance_spec(instance)), f"instance-{instance.pk}"))
    return blocks


def _why(op: Op, underlay_ns: str) -> str:
    """One line on why an overlay step is there (the learner's question, not what the command says)."""
    match op:
        case NetnsAdd(name=name) if name == underlay_ns:
            return "the node's underlay: its VTEP and every VXLAN UDP socket live here, never in the root namespace"
        case NetnsAdd():
            return "the fabric stands in for the physical network between hosts (a namespace, never the root one)"
        case LinkAddBridge():
            return "the fabric's switch: every node's underlay plugs into it"
        case VethAdd():
            return "the node's cable into the fabric switch"
        case LinkMtu():
            return "MTU 1550: VXLAN adds 50 bytes, so tenant frames keep 1500 (a 1500 underlay drops full frames)"
        case AddrAdd():
            return "the VTEP: the address other nodes send this node's VXLAN packets to"
        case LinkUp():
            return "up: the kernel sends nothing on a down link"
        case VxlanAdd(vni=vni):
            return (f"VNI {vni} keeps this network apart from every other on the same wire; created from the underlay"
                    " so its UDP 4789 socket stays there; nolearning: the database says where the nodes are")
        case FloodList():
            return ("head-end replication: a broadcast (DHCP DISCOVER, ARP) is copied once to each other node of"
                    " the network — one flood entry per peer VTEP, from the database (Neutron's l2population)")
    return ""


def _explained(ops: list[Op], underlay_ns: str) -> list[str]:
    """Each op's command preceded by its ``# why`` line."""
    return [line for op in ops for line in (f"# {_why(op, underlay_ns)}", op.shell())]


def instance_commands(instance: Instance, *, host_driver: HostDriver | None = None) -> list[CommandBlock]:
    """The instance's network first (it plugs into that bridge and leases from that dnsmasq), then the instance."""
    d = host_driver or driver()
    network = instance.network
    return [
        CommandBlock(f"network {network.name} (needed first)", d.transcript_network(network_spec(network)),
                     f"network-{network.pk}"),
        CommandBlock(f"instance {instance.hostname}", d.transcript_instance(instance_spec(instance)),
                     f"instance-{instance.pk}"),
    ]


def router_commands(router: Router, *, host_driver: HostDriver | None = None) -> list[CommandBlock]:
    """The networks the router plugs into (needed first: its veths go into their bridges), then the router —
    namespace, sysctls, a veth per port, addresses, default route, ``nft -f`` — then how to look at it."""
    d = host_driver or driver()
    loaded = load_router(router.pk)
    spec = router_spec(loaded)
    networks = {i.subnet.network for i in loaded.interfaces.all()}
    if loaded.external_network is not None:
        networks.add(loaded.external_network)
    blocks = [CommandBlock(f"network {n.name} (needed first)", d.transcript_network(network_spec(n)),
                           f"network-{n.pk}") for n in sorted(networks, key=lambda n: n.pk)]
    ns = d.names.router_ns(router.kernel_id)
    blocks.append(CommandBlock(f"router {router.name}", d.transcript_router(spec), f"router-{router.pk}"))
    blocks.append(CommandBlock(f"look at router {router.name}", [
        f"ip -n {ns} addr show", f"ip -n {ns} route show",
        f"ip netns exec {ns} nft list ruleset", f"ip netns exec {ns} conntrack -L",
    ], f"router-{router.pk}-look"))
    return blocks


def command_count(blocks: list[CommandBlock]) -> int:
    """How many commands the blocks hold (a ``# why`` line is no command)."""
    return sum(1 for b in blocks for c in b.commands if not c.startswith("#"))


def as_script(blocks: list[CommandBlock]) -> str:
    """One ``bash -e`` script: comments name each block."""
    lines = ["#!/bin/bash", "# Equivalent commands generated by netdash from the same plan the host agent applies.",
             "set -e"]
    for block in blocks:
        lines += ["", f"# --- {block.title}", *block.commands]
    return "\n".join(lines) + "\n"


# --- labs ----------------------------------------------------------------------------------------------

LAB_NETWORK = "overlap-lab"
LAB_CIDR = "192.168.1.0/24"
LAB_SIDES = ("a", "b")
# The routed lab's outside world: TEST-NET-3 inside the lab's own namespaces, never routed anywhere.
LAB_EXTERNAL_NETWORK = "lab-upstream"
LAB_EXTERNAL_CIDR = "203.0.113.0/24"
LAB_UPSTREAM = "203.0.113.1"
LAB_IPV6_SIDE = "v6"  # the three-modes lab's one tenant


def lab_slug(lab: Lab, side: str) -> str:
    """The slug of one of a lab's tenants: a side (``a``, ``b``) or the routed lab's upstream (``up``)."""
    return f"lab{lab.pk}-{side}"


def labs_for_user(user: AbstractBaseUser) -> QuerySet[Lab]:
    """The user's own labs. Nobody else's, superusers included: a lab is its learner's private sandbox."""
    if not user.is_authenticated:
        return Lab.objects.none()
    return Lab.objects.filter(learner=user)


def lab_classroom(user: AbstractBaseUser) -> Classroom | None:
    """The class whose lab settings apply to the user: the first with labs on that they learn or teach in."""
    if not user.is_authenticated:
        return None
    return (Classroom.objects.filter(labs_enabled=True).filter(Q(learners=user) | Q(instructors=user))
            .distinct().order_by("pk").first())


def can_start_lab(user: AbstractBaseUser) -> bool:
    """Learners and instructors of a class with labs on; superusers always."""
    return user.is_authenticated and (user.is_superuser or lab_classroom(user) is not None)


def classrooms_taught(user: AbstractBaseUser) -> QuerySet[Classroom]:
    """Classes whose labs the user may turn on or off: theirs as instructor, every class for superusers."""
    if not user.is_authenticated:
        return Classroom.objects.none()
    return Classroom.objects.all() if user.is_superuser else Classroom.objects.filter(instructors=user)


@dataclass
class LabSide:
    """One tenant of a lab with its network and instance (either may still be building, or gone)."""

    tenant: Tenant
    network: Network | None
    instance: Instance | None
    router: Router | None = None  # the routed lab's


def lab_sides(lab: Lab) -> list[LabSide]:
    """Both sides of the lab as they exist now, in slug order (``…-a`` first); the upstream tenant is no side."""
    sides = []
    for tenant in lab.tenants.filter(slug__in=[lab_slug(lab, s) for s in LAB_SIDES]).order_by("slug"):
        network = (Network.objects.filter(tenant=tenant, name=LAB_NETWORK).exclude(status=ObjectStatus.DELETING)
                   .first())
        instance = _live_instances(network).first() if network is not None else None
        router = Router.objects.filter(tenant=tenant).exclude(status=ObjectStatus.DELETING).first()
        sides.append(LabSide(tenant, network, instance, router))
    return sides


def lab_ipv6_modes(lab: Lab) -> list[LabSide]:
    """The three-modes lab's networks with their instance, in ``ipv6_lab.MODES`` order (SLAAC first); empty
    before its tenant exists or once it is gone."""
    tenant = lab.tenants.filter(slug=lab_slug(lab, LAB_IPV6_SIDE)).first()
    if tenant is None:
        return []
    sides = []
    for _mode, name, _cidr in IPV6_MODES:
        network = Network.objects.filter(tenant=tenant, name=name).exclude(status=ObjectStatus.DELETING).first()
        sides.append(LabSide(tenant, network, _live_instances(network).first() if network is not None else None))
    return sides
