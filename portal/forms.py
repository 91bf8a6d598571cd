"""Forms: parse what the browser sent, call one service, and put the service's errors next to the right field.

Validation rules live in the service layer (one place for pages, API and CLI); these forms only convert text
inputs (lines of allocation pools, comma-separated DNS servers) into the service's argument types.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from tenants import routers, services, subnet_pools, validators
from tenants.choices import Role
from tenants.models import Instance, Network, Subnet

T = TypeVar("T")

NO_GATEWAY = "none"


def apply_service_error(form: forms.Form, exc: ValidationError) -> None:
    """Attach a service ValidationError to ``form``: field-keyed messages to their field, the rest on top.

    A key the form has no field for (e.g. ``subnet`` when the form has no subnet chooser) becomes a non-field
    error prefixed with the field's name, so no message is ever dropped.
    """
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc.messages)
        return
    for field, errors in exc.message_dict.items():
        if field in form.fields:
            form.add_error(field, errors)
        elif field == NON_FIELD_ERRORS:
            form.add_error(None, errors)
        else:
            label = field.replace("_", " ")
            form.add_error(None, [f"{label}: {message}" for message in errors])


class ServiceForm(forms.Form):
    """A form whose ``submit`` calls a service and maps its ValidationError onto fields."""

    def submit(self, service: Callable[..., T], **kwargs: Any) -> T | None:
        """Call ``service(**kwargs)``; on ValidationError record it on the form and return None."""
        try:
            return service(**kwargs)
        except ValidationError as exc:
            apply_service_error(self, exc)
            return None


def _lines(value: str) -> str:
    return "\n".join(line.strip() for line in (value or "").splitlines() if line.strip())


def _split_servers(value: str) -> list[str]:
    return [part for part in re.split(r"[\s,;]+", value or "") if part]


class SubnetFieldsMixin(forms.Form):
    """The DHCP settings a subnet has; shared by "new network", "new subnet" and "edit subnet"."""

    gateway = forms.CharField(
        required=False, max_length=45,
        help_text=f"Blank: the first usable address. Write “{NO_GATEWAY}” for a subnet without a gateway.",
    )
    dhcp_address = forms.CharField(
        label="DHCP server address", required=False, max_length=45,
        help_text="Where the network's dnsmasq listens. Blank: the first usable address that is not the gateway.",
    )
    allocation_pools = forms.CharField(
        label="Allocation pools", required=False, widget=forms.Textarea(attrs={"rows": 3, "class": "mono"}),
        help_text="Where IPAM takes instance addresses from (dnsmasq then hands out only those reservations). "
                  "One pool per line as start-end, e.g. 192.168.1.10-192.168.1.200. "
                  "Blank: every address except the gateway and the DHCP server.",
    )
    dns_nameservers = forms.CharField(
        label="DNS servers", required=False, max_length=200,
        help_text=f"Up to {validators.MAX_DNS_SERVERS} addresses, separated by commas or spaces.",
    )
    domain_name = forms.CharField(label="Domain", required=False, max_length=validators.MAX_DOMAIN_LENGTH,
                                  help_text="Search domain handed out by DHCP, e.g. tenant-a.internal.")
    # No min/max here: the service's message ("Lease time 60s is outside 120s–2592000s.") is the better one.
    lease_seconds = forms.IntegerField(label="Lease time (seconds)", initial=3600)
    enable_dhcp = forms.BooleanField(label="Serve DHCP on this subnet", required=False, initial=True)

    def subnet_kwargs(self) -> dict[str, Any]:
        """The service arguments for the subnet part of the form."""
        data = self.cleaned_data
        gateway = (data.get("gateway") or "").strip()
        return {
            "gateway": None if gateway.lower() == NO_GATEWAY else (gateway or services.AUTO),
            "dhcp_address": (data.get("dhcp_address") or "").strip() or None,
            "allocation_pools": _lines(data.get("allocation_pools", "")),
            "dns_nameservers": _split_servers(data.get("dns_nameservers", "")),
            "domain_name": (data.get("domain_name") or "").strip(),
            "lease_seconds": data["lease_seconds"],
            "enable_dhcp": bool(data.get("enable_dhcp")),
        }

    @staticmethod
    def initial_for(subnet: Subnet) -> dict[str, Any]:
        """Show an existing subnet's settings in the same text shapes the form accepts."""
        return {
            "gateway": subnet.gateway or NO_GATEWAY,
            "dhcp_address": subnet.dhcp_address,
            "allocation_pools": "\n".join(f"{s}-{e}" for s, e in subnet.pools),
            "dns_nameservers": ", ".join(subnet.dns_nameservers or []),
            "domain_name": subnet.domain_name,
            "lease_seconds": subnet.lease_seconds,
            "enable_dhcp": subnet.enable_dhcp,
        }


_IPV6_MODE_CHOICES = [("", "—"), *((m, m) for m in validators.IPV6_MODES)]


class IPv6ModesMixin(forms.Form):
    """Neutron's two IPv6 mode fields of a new subnet (fixed once created, like its CIDR)."""

    ipv6_ra_mode = forms.ChoiceField(
        label="IPv6 RA mode", required=False, choices=_IPV6_MODE_CHOICES,
        help_text="IPv6 only: what the network's router advertisements announce; blank = an outside router.",
    )
    ipv6_address_mode = forms.ChoiceField(
        label="IPv6 address mode", required=False, choices=_IPV6_MODE_CHOICES,
        help_text="IPv6 only: slaac (from the MAC), dhcpv6-stateless (SLAAC + DHCPv6 options) or "
                  "dhcpv6-stateful (DHCPv6 addresses). Valid pairs: the same mode twice, or an address mode alone.",
    )

    def ipv6_kwargs(self) -> dict[str, Any]:
        return {"ipv6_ra_mode": self.cleaned_data.get("ipv6_ra_mode", ""),
                "ipv6_address_mode": self.cleaned_data.get("ipv6_address_mode", "")}


class NetworkCreateForm(IPv6ModesMixin, SubnetFieldsMixin, ServiceForm):
    """A network and its first subnet in one step (a network without a subnet cannot serve anyone)."""

    name = forms.CharField(max_length=validators.MAX_NAME_LENGTH, help_text="Unique within the tenant.")
    cidr = forms.CharField(label="Subnet CIDR", max_length=43,
                           help_text="A private network address, e.g. 192.168.1.0/24.")

    field_order = ["name", "cidr", "gateway", "dhcp_address", "allocation_pools", "dns_nameservers", "domain_name",
                   "lease_seconds", "enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode"]

    def save(self, *, tenant, actor: AbstractBaseUser) -> Network | None:
        subnet = {"cidr": self.cleaned_data["cidr"].strip(), **self.subnet_kwargs(), **self.ipv6_kwargs()}
        return self.submit(services.network_create, tenant=tenant, name=self.cleaned_data["name"],
                           subnet=subnet, actor=actor)


class NetworkEditForm(ServiceForm):
    """Rename a network (kernel names derive from its id, so a rename touches nothing on the host)."""

    name = forms.CharField(max_length=validators.MAX_NAME_LENGTH)

    def save(self, *, network: Network, actor: AbstractBaseUser) -> Network | None:
        return self.submit(services.network_update, network=network, name=self.cleaned_data["name"], actor=actor)


class SubnetCreateForm(IPv6ModesMixin, SubnetFieldsMixin, ServiceForm):
    """Add a subnet to a network."""

    cidr = forms.CharField(label="CIDR", max_length=43, required=False,
                           help_text="A private network address, e.g. 10.0.5.0/24 (empty with “from the pool”).")
    from_pool = forms.BooleanField(
        label="IPv6 /64 from the subnet pool", required=False,
        help_text="The next free /64 of this deployment's ULA prefix: unique, so it can be attached to a router.")
    name = forms.CharField(required=False, max_length=validators.MAX_NAME_LENGTH)

    field_order = ["cidr", "from_pool", "name", "gateway", "dhcp_address", "allocation_pools", "dns_nameservers",
                   "domain_name", "lease_seconds", "enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode"]

    def save(self, *, network: Network, actor: AbstractBaseUser) -> Subnet | None:
        common = {"network": network, "name": self.cleaned_data.get("name", ""), "actor": actor,
                  **self.subnet_kwargs(), **self.ipv6_kwargs()}
        cidr = self.cleaned_data["cidr"].strip()
        if self.cleaned_data.get("from_pool") == bool(cidr):
            self.add_error("cidr", "Give a CIDR, or tick “from the pool” for an IPv6 /64 (not both).")
            return None
        if cidr:
            return self.submit(services.subnet_create, cidr=cidr, **common)
        return self.submit(subnet_pools.subnet_create_from_pool, **common)


class SubnetEditForm(SubnetFieldsMixin, ServiceForm):
    """Change a subnet's DHCP settings; its CIDR is fixed (a different range is a new subnet)."""

    name = forms.CharField(required=False, max_length=validators.MAX_NAME_LENGTH)

    field_order = ["name", "gateway", "dhcp_address", "allocation_pools", "dns_nameservers", "domain_name",
                   "lease_seconds", "enable_dhcp"]

    def save(self, *, subnet: Subnet, actor: AbstractBaseUser) -> Subnet | None:
        changes = self.subnet_kwargs()
        changes["name"] = self.cleaned_data.get("name", "")
        return self.submit(services.subnet_update, subnet=subnet, actor=actor, **changes)


class InstanceCreateForm(ServiceForm):
    """A simulated machine: hostname, subnet, and optionally the exact address it must get."""

    hostname = forms.CharField(max_length=validators.MAX_HOSTNAME_LENGTH,
                               help_text="Lowercase letters, digits and inner hyphens, e.g. web-1.")
    subnet = forms.TypedChoiceField(coerce=int, required=False)
    ip_address = forms.CharField(label="Fixed IP", required=False, max_length=45,
                                 help_text="Blank: IPAM picks the next free address of the subnet's allocation pools.")

    def __init__(self, *args: Any, network: Network, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.network = network
        self.subnets = {s.pk: s for s in network.subnets.order_by("id")}
        self.fields["subnet"].choices = [(pk, s.cidr) for pk, s in self.subnets.items()]
        if len(self.subnets) <= 1:
            self.fields["subnet"].widget = forms.HiddenInput()

    def save(self, *, actor: AbstractBaseUser):
        subnet = self.subnets.get(self.cleaned_data.get("subnet") or 0)
        return self.submit(services.instance_create, network=self.network, hostname=self.cleaned_data["hostname"],
                           subnet=subnet, ip_address=(self.cleaned_data.get("ip_address") or "").strip() or None,
                           actor=actor)


class InstanceEditForm(ServiceForm):
    """Pin an instance to an address, or hand the choice back to IPAM."""

    ip_address = forms.CharField(label="Fixed IP", required=False, max_length=45,
                                 help_text="Blank: keep the current address but stop pinning it.")

    def save(self, *, instance, actor: AbstractBaseUser):
        return self.submit(services.instance_update, instance=instance,
                           ip_address=(self.cleaned_data.get("ip_address") or "").strip() or None, actor=actor)


class MemberAddForm(ServiceForm):
    """Add an existing user to the tenant (or change their role if they are already in it)."""

    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.MEMBER)

    def clean_username(self) -> AbstractBaseUser:
        username = self.cleaned_data["username"].strip()
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise ValidationError(f"There is no active user named {username!r}; an administrator creates users.")
        return user

    def save(self, *, tenant, actor: AbstractBaseUser):
        return self.submit(services.membership_set, tenant=tenant, user=self.cleaned_data["username"],
                           role=self.cleaned_data["role"], actor=actor)


class MemberRoleForm(ServiceForm):
    """Change one member's role."""

    role = forms.ChoiceField(choices=Role.choices)

    def save(self, *, membership, actor: AbstractBaseUser):
        return self.submit(services.membership_set, tenant=membership.tenant, user=membership.user,
                           role=self.cleaned_data["role"], actor=actor)


class TokenCreateForm(ServiceForm):
    """Name a new API token so it can be recognised (and revoked) later."""

    name = forms.CharField(max_length=64, help_text="What uses this token, e.g. “terraform on laptop”.")


# --- routers and floating IPs (issue 14) --------------------------------------------------------------

class _ChoiceForm(ServiceForm):
    """A form choosing from a queryset the view scoped (the tenant's subnets, instances, the external networks):
    a choice outside it is "not one of the available choices", never another tenant's row."""

    def __init__(self, *args: Any, choices: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields[self.choice_field].queryset = choices


class RouterCreateForm(_ChoiceForm):
    choice_field = "external_network"
    name = forms.CharField(max_length=validators.MAX_NAME_LENGTH)
    external_network = forms.ModelChoiceField(
        queryset=Network.objects.none(), required=False, empty_label="No gateway (east-west only)",
        help_text="The router takes an address there and SNATs its subnets out of it; you can set it later.")

    def save(self, *, tenant, actor: AbstractBaseUser):
        return self.submit(routers.router_create, tenant=tenant, name=self.cleaned_data["name"],
                           external_network=self.cleaned_data["external_network"], actor=actor)


class RouterGatewayForm(_ChoiceForm):
    choice_field = "external_network"
    external_network = forms.ModelChoiceField(queryset=Network.objects.none(), label="External network")

    def save(self, *, router, actor: AbstractBaseUser):
        return self.submit(routers.router_set_gateway, router=router,
                           external_network=self.cleaned_data["external_network"], actor=actor)


class RouterInterfaceForm(_ChoiceForm):
    choice_field = "subnet"
    subnet = forms.ModelChoiceField(queryset=Subnet.objects.none(),
                                    help_text="The router takes the subnet's gateway address on its network.")

    def save(self, *, router, actor: AbstractBaseUser):
        return self.submit(routers.router_interface_add, router=router, subnet=self.cleaned_data["subnet"],
                           actor=actor)


class FloatingIPAllocateForm(_ChoiceForm):
    choice_field = "external_network"
    external_network = forms.ModelChoiceField(queryset=Network.objects.none(), label="External network")

    def save(self, *, tenant, actor: AbstractBaseUser):
        return self.submit(routers.floating_ip_allocate, tenant=tenant,
                           external_network=self.cleaned_data["external_network"], actor=actor)


class FloatingIPAssociateForm(_ChoiceForm):
    choice_field = "instance"
    instance = forms.ModelChoiceField(queryset=Instance.objects.none(),
                                      help_text="Associating an address already in use moves it to this instance.")

    def save(self, *, floating_ip, actor: AbstractBaseUser):
        return self.submit(routers.floating_ip_associate, floating_ip=floating_ip,
                           instance=self.cleaned_data["instance"], actor=actor)
