"""Tenants, networks, subnets, instances and leases: the database is the source of truth.

Single-model checks live in ``clean()``; rules that span rows (overlap, quotas, allocation) live in
``services`` and are backed by database constraints so concurrent requests cannot both win.
"""

from __future__ import annotations

import ipaddress
import secrets

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import models
from django.db.models import Q
from django.urls import reverse

from . import validators
from .choices import LeaseEventKind, LeaseState, NodeState, ObjectStatus, Role

KERNEL_ID_LENGTH = 8


def new_kernel_id() -> str:
    """A short random hex token: kernel names are derived from it, and it never changes or repeats."""
    return secrets.token_hex(KERNEL_ID_LENGTH // 2)


class Tenant(models.Model):
    """A customer. Users belong to tenants through memberships; every network belongs to one tenant."""

    name = models.CharField(max_length=validators.MAX_NAME_LENGTH, unique=True,
                            validators=[validators.validate_display_name])
    slug = models.SlugField(max_length=50, unique=True, validators=[validators.validate_slug])
    quota_networks = models.PositiveIntegerField(default=10)
    quota_subnets = models.PositiveIntegerField(default=20)
    quota_instances = models.PositiveIntegerField(default=50)
    quota_routers = models.PositiveIntegerField(default=5)
    quota_floating_ips = models.PositiveIntegerField(default=10)
    deleting = models.BooleanField(
        default=False, editable=False,
        help_text="Deletion requested: the row goes once the agent has torn down all of its networks.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, through="Membership", related_name="tenants")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    """A user's role in one tenant: members use networks, tenant admins also manage members."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "tenant"], name="membership_unique_user_tenant")]
        ordering = ["tenant__name", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} in {self.tenant} ({self.role})"


class Network(models.Model):
    """An isolated L2 segment: realised as namespaces with a bridge and a dnsmasq of its own."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="networks")
    name = models.CharField(max_length=validators.MAX_NAME_LENGTH, validators=[validators.validate_display_name])
    kernel_id = models.CharField(
        max_length=KERNEL_ID_LENGTH, unique=True, default=new_kernel_id, editable=False,
        help_text="Stable id from which namespace and device names are derived.",
    )
    node = models.CharField(max_length=64, blank=True, default="",
                            help_text="The network node (agent) this network is scheduled to.")
    vni = models.PositiveIntegerField(
        null=True, blank=True, unique=True, editable=False,
        help_text="VXLAN network identifier on the overlay between nodes (unique: two tenants' segments on one "
                  "node's underlay must never share one).",
    )
    status = models.CharField(max_length=16, choices=ObjectStatus.choices, default=ObjectStatus.PENDING)
    status_reason = models.CharField(max_length=500, blank=True, default="")
    external = models.BooleanField(
        default=False, editable=False,
        help_text="Created by an administrator: every tenant may put router gateways and floating IPs on it.",
    )
    simulated_upstream = models.BooleanField(
        default=False, editable=False,
        help_text="Attach the project's simulated upstream (a TEST-NET namespace with no route out): demo, "
                  "tests and labs.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["tenant", "name"], name="network_unique_name_per_tenant")]
        ordering = ["tenant__name", "name"]

    def __str__(self) -> str:
        return f"{self.tenant.slug}/{self.name}"

    def get_absolute_url(self) -> str:
        return reverse("portal:network-detail", args=[self.pk])


IPV6_MODE_CHOICES = [(m, m) for m in validators.IPV6_MODES]


class Subnet(models.Model):
    """An IP range on a network, served by the network's dnsmasq.

    Addresses are stored as text with an ``ip_version`` so IPv6 subnets can be added without a schema change.
    """

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="subnets")
    name = models.CharField(max_length=validators.MAX_NAME_LENGTH, blank=True, default="")
    ip_version = models.PositiveSmallIntegerField(default=4, choices=[(4, "IPv4"), (6, "IPv6")])
    cidr = models.CharField(max_length=43, help_text="Network address with prefix, e.g. 192.168.1.0/24.")
    gateway = models.GenericIPAddressField(null=True, blank=True)
    dhcp_address = models.GenericIPAddressField(help_text="The address the network's dnsmasq listens on.")
    dns_nameservers = models.JSONField(default=list, blank=True)
    domain_name = models.CharField(max_length=validators.MAX_DOMAIN_LENGTH, blank=True, default="",
                                   validators=[validators.validate_domain_name])
    lease_seconds = models.PositiveIntegerField(default=3600, validators=[validators.validate_lease_seconds])
    enable_dhcp = models.BooleanField(default=True)
    ipv6_ra_mode = models.CharField(
        max_length=16, blank=True, default="", choices=IPV6_MODE_CHOICES,
        help_text="IPv6: what the router advertisements announce (blank: an outside router sends them).",
    )
    ipv6_address_mode = models.CharField(
        max_length=16, blank=True, default="", choices=IPV6_MODE_CHOICES,
        help_text="IPv6: how instances get addresses (SLAAC, SLAAC + DHCPv6 options, or DHCPv6 addresses).",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["network", "cidr"], name="subnet_unique_cidr_per_network")]
        ordering = ["network_id", "cidr"]

    def __str__(self) -> str:
        return f"{self.cidr} ({self.network.name})" if self.network_id else self.cidr

    @property
    def ip_network(self) -> validators.IPNetwork:
        return ipaddress.ip_network(self.cidr)

    @property
    def predicts_addresses(self) -> bool:
        """True when instances take their address by SLAAC (EUI-64 of their MAC), not from the pools."""
        return self.ip_version == 6 and self.ipv6_address_mode != "dhcpv6-stateful"

    @property
    def pools(self) -> list[tuple[validators.IPAddress, validators.IPAddress]]:
        return [(ipaddress.ip_address(p.start), ipaddress.ip_address(p.end)) for p in self.allocation_pools.all()]

    def instance_address(self, value: object) -> validators.IPAddress:
        """The one definition of an address an instance may hold here (IPAM's choice or a fixed IP): a host
        address inside the subnet that is neither the gateway nor the DHCP server's."""
        address = validators.parse_address(value, field="address")
        validators.validate_host_address(address, self.ip_network, what="fixed IP")
        for label, other in (("gateway", self.gateway), ("DHCP server address", self.dhcp_address)):
            if other and address == ipaddress.ip_address(other):
                raise ValidationError(f"{address} is the subnet's {label}; pick another address.", code="reserved")
        return address

    def clean(self) -> None:
        """Checks that need only this row: CIDR shape, gateway and DHCP address inside it."""
        errors: dict[str, list[str]] = {}
        if self.name:
            # Names reach the UI and event payloads: same rules as network names (blank allowed here).
            with validators.collect_errors(errors, "name"):
                validators.validate_display_name(self.name)
        external = bool(self.network_id) and self.network.external
        try:
            network = (validators.validate_external_cidr if external else validators.validate_subnet_cidr)(self.cidr)
            self.cidr = str(network)
            self.ip_version = network.version
        except ValidationError as exc:
            raise ValidationError({"cidr": exc.messages}) from None
        for field, what in (("gateway", "gateway"), ("dhcp_address", "DHCP server address")):
            value = getattr(self, field)
            if value in (None, ""):
                continue
            with validators.collect_errors(errors, field):
                address = validators.parse_address(value, field=what)
                validators.validate_host_address(address, network, what=what)
                setattr(self, field, str(address))
        if self.gateway and self.dhcp_address and self.gateway == self.dhcp_address:
            errors.setdefault("dhcp_address", []).append(
                f"The DHCP server address {self.dhcp_address} is the gateway; pick another address."
            )
        with validators.collect_errors(errors, "dns_nameservers"):
            self.dns_nameservers = validators.validate_dns_servers(self.dns_nameservers or [], network.version)
        with validators.collect_errors(errors, "ipv6_address_mode"):
            validators.validate_ipv6_modes(network, self.ipv6_ra_mode, self.ipv6_address_mode)
        if errors:
            raise ValidationError(errors)


class AllocationPool(models.Model):
    """One DHCP/IPAM allocation range of a subnet (a subnet may have several)."""

    subnet = models.ForeignKey(Subnet, on_delete=models.CASCADE, related_name="allocation_pools")
    start = models.GenericIPAddressField()
    end = models.GenericIPAddressField()

    class Meta:
        ordering = ["subnet_id", "id"]

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"


class Instance(models.Model):
    """A simulated machine with one port: a namespace whose DHCP client leases from its network's dnsmasq.

    ``ip_address`` is allocated by IPAM when the instance is created (or is the requested fixed IP) and handed
    to dnsmasq as a reservation, so the database, not dnsmasq, decides who holds which address.
    """

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="instances")
    subnet = models.ForeignKey(Subnet, on_delete=models.PROTECT, related_name="instances")
    hostname = models.CharField(max_length=validators.MAX_HOSTNAME_LENGTH, validators=[validators.validate_hostname])
    kernel_id = models.CharField(max_length=KERNEL_ID_LENGTH, unique=True, default=new_kernel_id, editable=False)
    mac_address = models.CharField(max_length=17, validators=[validators.validate_mac])
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    fixed_ip = models.BooleanField(default=False, help_text="True when the user asked for this exact address.")
    # Dual stack: the IPv6 subnet and address of an instance whose ``subnet`` is IPv4 (SLAAC's EUI-64 prediction or
    # a DHCPv6 reservation from IPAM). An instance on an IPv6-only network holds its address in ``ip_address``.
    ipv6_subnet = models.ForeignKey(Subnet, on_delete=models.PROTECT, null=True, blank=True,
                                    related_name="ipv6_instances")
    ipv6_address = models.GenericIPAddressField(null=True, blank=True, protocol="IPv6")
    node = models.CharField(max_length=64, blank=True, default="",
                            help_text="The compute node (agent) this instance is scheduled to.")
    status = models.CharField(max_length=16, choices=ObjectStatus.choices, default=ObjectStatus.PENDING)
    status_reason = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["network", "mac_address"], name="instance_unique_mac_per_network"),
            models.UniqueConstraint(fields=["network", "hostname"], name="instance_unique_hostname_per_network"),
            models.UniqueConstraint(fields=["subnet", "ip_address"], condition=Q(ip_address__isnull=False),
                                    name="instance_unique_ip_per_subnet"),
            models.UniqueConstraint(fields=["ipv6_subnet", "ipv6_address"], condition=Q(ipv6_address__isnull=False),
                                    name="instance_unique_ipv6_per_subnet"),
        ]
        ordering = ["network_id", "hostname"]

    def __str__(self) -> str:
        return f"{self.hostname} ({self.ip_address or 'no ip'})"

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.subnet_id and self.network_id and self.subnet.network_id != self.network_id:
            errors["subnet"] = ["The subnet belongs to another network."]
        if self.ip_address and self.subnet_id:
            with validators.collect_errors(errors, "ip_address"):
                self.ip_address = str(self.subnet.instance_address(self.ip_address))
        if self.ipv6_subnet_id:
            if self.ipv6_subnet.network_id != self.network_id or self.ipv6_subnet.ip_version != 6:
                errors["ipv6_subnet"] = ["The IPv6 subnet must be an IPv6 subnet of the instance's network."]
            elif self.ipv6_address:
                with validators.collect_errors(errors, "ipv6_address"):
                    self.ipv6_address = str(self.ipv6_subnet.instance_address(self.ipv6_address))
        if errors:
            raise ValidationError(errors)


class Router(models.Model):
    """A tenant's router (Neutron's L3 agent): a namespace joining its subnets, with SNAT and floating IPs onto
    an external network through its gateway port."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="routers")
    name = models.CharField(max_length=validators.MAX_NAME_LENGTH, validators=[validators.validate_display_name])
    kernel_id = models.CharField(max_length=KERNEL_ID_LENGTH, unique=True, default=new_kernel_id, editable=False)
    node = models.CharField(max_length=64, blank=True, default="",
                            help_text="The network node (agent) this router is scheduled to.")
    status = models.CharField(max_length=16, choices=ObjectStatus.choices, default=ObjectStatus.PENDING)
    status_reason = models.CharField(max_length=500, blank=True, default="")
    external_network = models.ForeignKey(Network, on_delete=models.PROTECT, null=True, blank=True,
                                         related_name="gateway_routers")
    external_subnet = models.ForeignKey(Subnet, on_delete=models.PROTECT, null=True, blank=True,
                                        related_name="gateway_routers")
    external_ip = models.GenericIPAddressField(null=True, blank=True,
                                               help_text="The router's address on the external network (SNAT).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "name"], name="router_unique_name_per_tenant"),
            models.UniqueConstraint(fields=["external_subnet", "external_ip"], condition=Q(external_ip__isnull=False),
                                    name="router_unique_external_ip"),
        ]
        ordering = ["tenant__name", "name"]

    def __str__(self) -> str:
        return f"{self.tenant.slug}/{self.name}"


class RouterInterface(models.Model):
    """A subnet attached to a router: the router holds the subnet's gateway address on the subnet's segment.

    ``subnet`` is unique: a second router on a subnet would answer for the same gateway address.
    """

    router = models.ForeignKey(Router, on_delete=models.CASCADE, related_name="interfaces")
    subnet = models.OneToOneField(Subnet, on_delete=models.CASCADE, related_name="router_interface")
    kernel_id = models.CharField(max_length=KERNEL_ID_LENGTH, unique=True, default=new_kernel_id, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["router_id", "id"]

    def __str__(self) -> str:
        return f"{self.router.name} → {self.subnet.cidr}"


class FloatingIP(models.Model):
    """An address of an external subnet held by a tenant, optionally associated to one of its instances (the
    router in front of the instance's subnet translates it both ways)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="floating_ips")
    network = models.ForeignKey(Network, on_delete=models.PROTECT, related_name="floating_ips",
                                help_text="The external network the address belongs to.")
    subnet = models.ForeignKey(Subnet, on_delete=models.PROTECT, related_name="floating_ips")
    address = models.GenericIPAddressField()
    instance = models.OneToOneField(Instance, on_delete=models.SET_NULL, null=True, blank=True,
                                    related_name="floating_ip")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["subnet", "address"], name="floating_ip_unique_address")]
        ordering = ["tenant__name", "address"]

    def __str__(self) -> str:
        return f"{self.address} → {self.instance.ip_address if self.instance else 'unassociated'}"

    @property
    def router(self) -> Router | None:
        """The router that translates this address: the one attached to the associated instance's subnet."""
        if self.instance is None:
            return None
        try:  # through the relation, so a list that select_related it costs no query per row
            return self.instance.subnet.router_interface.router
        except ObjectDoesNotExist:
            return None


class Lease(models.Model):
    """A DHCP lease as dnsmasq reports it; kept after release/expiry for the history view."""

    subnet = models.ForeignKey(Subnet, on_delete=models.CASCADE, related_name="leases")
    instance = models.ForeignKey(Instance, on_delete=models.SET_NULL, null=True, blank=True, related_name="leases")
    ip_address = models.GenericIPAddressField()
    mac_address = models.CharField(max_length=17)
    hostname = models.CharField(max_length=validators.MAX_HOSTNAME_LENGTH, blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=LeaseState.choices, default=LeaseState.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subnet", "ip_address"], condition=Q(state="active"),
                                    name="lease_unique_active_ip_per_subnet"),
        ]
        ordering = ["subnet_id", "ip_address"]

    def __str__(self) -> str:
        return f"{self.ip_address} → {self.mac_address} ({self.state})"


class LeaseEvent(models.Model):
    """History of what happened to leases (add / renew / release / expire), newest last."""

    subnet = models.ForeignKey(Subnet, on_delete=models.CASCADE, related_name="lease_events")
    lease = models.ForeignKey(Lease, on_delete=models.SET_NULL, null=True, blank=True, related_name="events")
    kind = models.CharField(max_length=16, choices=LeaseEventKind.choices)
    ip_address = models.GenericIPAddressField()
    mac_address = models.CharField(max_length=17)
    hostname = models.CharField(max_length=validators.MAX_HOSTNAME_LENGTH, blank=True, default="")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["subnet", "at"])]

    def __str__(self) -> str:
        return f"{self.kind} {self.ip_address} {self.mac_address}"


class AuditEntry(models.Model):
    """Who changed what: written by services, shown to tenant admins for their own tenant."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, null=True, blank=True, related_name="audit")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    action = models.CharField(max_length=64)
    object_type = models.CharField(max_length=32)
    object_id = models.CharField(max_length=32, blank=True, default="")
    detail = models.CharField(max_length=500, blank=True, default="")
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["tenant", "at"])]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.object_type} {self.object_id}"


class Node(models.Model):
    """A host running one agent: registered by that agent at start, kept alive by its heartbeat.

    Why a row and not the RQ worker registry: scheduling, the overlay (a node's VTEP address, which networks it
    hosts) and failure detection all need facts about a node that Redis does not hold, and they must survive a
    Redis restart. ``Network.node`` names a node by ``name``; tenants see that name and nothing else.
    """

    name = models.CharField(max_length=64, unique=True)
    vtep_address = models.GenericIPAddressField(
        protocol="IPv4", null=True, blank=True, unique=True,
        help_text="The node's VXLAN tunnel endpoint on the underlay (unset: the node takes part in no overlay).",
    )
    dhcp = models.BooleanField(default=True, help_text="Role: may run DHCP servers.")
    compute = models.BooleanField(default=True, help_text="Role: may run instances.")
    state = models.CharField(max_length=16, choices=NodeState.choices, default=NodeState.UP)
    heartbeat_at = models.DateTimeField(help_text="When the node's agent last said it is alive.")
    registered_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SubnetPool(models.Model):
    """The deployment's IPv6 ULA /48 (RFC 4193: a random global id, drawn once and kept here so every node and
    restart hands out /64s from the same prefix). Routed IPv6 is not translated, so prefixes behind routers
    must be unique; this row is also the lock that serialises pool allocations and routed-prefix checks."""

    prefix = models.CharField(max_length=43, unique=True, help_text="The ULA /48, e.g. fd12:3456:789a::/48.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.prefix


class DhcpServer(models.Model):
    """One of a network's DHCP servers (a dnsmasq in a DHCP namespace) and the node that runs it.

    Why rows and not "the network's node": Neutron's ``dhcp_agents_per_network`` gives each network several
    servers on distinct nodes so DHCP keeps answering when one node dies. ``rank`` 0 answers from each subnet's
    ``dhcp_address`` (what a single-node install always had); every other rank holds its own address per subnet
    from IPAM (:class:`DhcpServerAddress`). A duty that moves to another node keeps its rank and addresses, so
    clients' server identifier stays valid.
    """

    network = models.ForeignKey(Network, on_delete=models.CASCADE, related_name="dhcp_servers")
    node = models.CharField(max_length=64, help_text="The dhcp node (agent) running this server.")
    rank = models.PositiveSmallIntegerField(help_text="0: answers from the subnets' DHCP address; others: their own.")
    failed_at = models.DateTimeField(
        null=True, blank=True,
        help_text="Failed on purpose (the failover lab): its node runs no dnsmasq for it, and neither the monitor "
                  "nor reconcile restarts one, until it is restored (cleared).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["network", "node"], name="dhcp_server_one_per_node_per_network"),
            models.UniqueConstraint(fields=["network", "rank"], name="dhcp_server_unique_rank_per_network"),
        ]
        ordering = ["network_id", "rank"]

    def __str__(self) -> str:
        return f"{self.network_id}#{self.rank}@{self.node}"


class DhcpServerAddress(models.Model):
    """A standby DHCP server's own address in one subnet, allocated by IPAM like an instance's (never shared)."""

    server = models.ForeignKey(DhcpServer, on_delete=models.CASCADE, related_name="addresses")
    subnet = models.ForeignKey(Subnet, on_delete=models.CASCADE, related_name="dhcp_server_addresses")
    address = models.GenericIPAddressField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["server", "subnet"], name="dhcp_address_one_per_server_per_subnet"),
            models.UniqueConstraint(fields=["subnet", "address"], name="dhcp_address_unique_per_subnet"),
        ]
        ordering = ["server_id", "subnet_id"]

    def __str__(self) -> str:
        return f"{self.address} ({self.server})"
