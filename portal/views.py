"""Portal views: look the object up through a selector (404 for anything not the user's), run a form, render.

No rules live here: forms call services, services validate; a view only wires request → form → redirect.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from api import selectors as token_selectors
from api import services as token_services
from tenants import failover, routers, selectors, services
from tenants.choices import NodeState, Role
from tenants.hostspecs import names
from tenants.models import Network

from . import forms
from . import selectors as page_selectors
from .pages import render_page
from .tenancy import current_tenant, select_tenant

AUDIT_PAGE_SIZE = 50


def _posted(request: HttpRequest):
    """Bind forms on POST even when nothing was filled in (an empty QueryDict is falsy)."""
    return request.POST if request.method == "POST" else None


def _network(request: HttpRequest, network_id: int):
    return get_object_or_404(selectors.networks_for_user(request.user), pk=network_id)


def _subnet(request: HttpRequest, subnet_id: int):
    return get_object_or_404(selectors.subnets_for_user(request.user), pk=subnet_id)


def _instance(request: HttpRequest, instance_id: int):
    return get_object_or_404(selectors.instances_for_user(request.user), pk=instance_id)


def _form_page(request: HttpRequest, form: forms.ServiceForm, template: str, context: dict[str, Any], *,
               save: Callable[[], Any], done: Callable[[Any], tuple[str, str]]) -> HttpResponse:
    """A create or edit page. A POST the service accepts ends in ``done(saved)``'s (message, url); anything else
    shows the page again, with the service's errors next to the fields they are about."""
    if request.method == "POST" and form.is_valid():
        saved = save()
        if saved:  # None or False: the service refused, and said why on the form
            message, url = done(saved)
            messages.success(request, message)
            return redirect(url)
    return render_page(request, template, {"form": form, **context})


def _confirmed(request: HttpRequest, act: Callable[[], Any], *, done: str, next_url: str, title: str, question: str,
               cancel_url: str | None = None, action: str = "Delete") -> HttpResponse:
    """A destructive action: GET asks (``portal/confirm.html``; cancel goes back to ``cancel_url``, by default
    ``next_url``); POST does it and says so on ``next_url`` — or, when the service refuses (a subnet still in
    use, the tenant's last admin, a router still routing), says why there instead."""
    if request.method != "POST":
        return render_page(request, "portal/confirm.html", {"title": title, "question": question, "action": action,
                                                            "cancel_url": cancel_url or next_url})
    try:
        act()
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, done)
    return redirect(next_url)


# --- tenant switcher -----------------------------------------------------------------------------------

@login_required
@require_POST
def tenant_switch(request: HttpRequest) -> HttpResponse:
    """Make another of the user's tenants the current one (superusers: any tenant)."""
    choice = request.POST.get("tenant", "")
    tenant = get_object_or_404(selectors.tenants_for_user(request.user), pk=int(choice) if choice.isdigit() else 0)
    select_tenant(request, tenant)
    return redirect("portal:network-list")


@login_required
def tenant_list(request: HttpRequest) -> HttpResponse:
    """Tenants the user administers (superusers: all), with quotas and links to members and audit."""
    tenants = page_selectors.administered_tenants(request.user).order_by("name")
    rows = [{"tenant": t, "quota": selectors.quota_usage(t)} for t in tenants]
    return render_page(request, "portal/tenant_list.html", {"rows": rows})


# --- networks ------------------------------------------------------------------------------------------

@login_required
def network_list(request: HttpRequest) -> HttpResponse:
    """The current tenant's networks with status and counts, and its quota usage."""
    tenant = current_tenant(request)
    networks = selectors.networks_with_counts(selectors.networks_for_user(request.user, tenant)) if tenant else []
    quota = selectors.quota_usage(tenant) if tenant else None
    return render_page(request, "portal/network_list.html", {"networks": networks, "quota": quota})


@login_required
def network_create(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    if tenant is None:
        messages.error(request, "You are not a member of any tenant yet; ask an administrator to add you.")
        return redirect("portal:network-list")
    form = forms.NetworkCreateForm(_posted(request))
    return _form_page(request, form, "portal/network_form.html", {"tenant": tenant},
                      save=lambda: form.save(tenant=tenant, actor=request.user),
                      done=lambda network: (f"Network {network.name} created; it is being set up.",
                                            network.get_absolute_url()))


@login_required
def network_detail(request: HttpRequest, network_id: int) -> HttpResponse:
    network = _network(request, network_id)
    context = {
        "network": network,
        "subnets": network.subnets.prefetch_related("allocation_pools").order_by("id"),
        "instances": page_selectors.network_instances(network),
        "leases": page_selectors.network_leases(network),
        "events": page_selectors.network_events(network),
        "router_interfaces": page_selectors.network_router_interfaces(network),
        **_dhcp_servers_context(network),
    }
    return render_page(request, "portal/network_detail.html", context)


def _dhcp_servers_context(network: Network) -> dict[str, Any]:
    """The network's DHCP servers with their nodes' states, and whether it has fewer than it should (an external
    network is meant to have one)."""
    servers = selectors.dhcp_servers_by_network([network.pk])[network.pk]
    states = selectors.node_states(row["node"] for row in servers)
    wanted = 1 if network.external else settings.NETDASH_DHCP_SERVERS_PER_NETWORK
    return {"dhcp_servers": [row | {"node_state": states.get(row["node"], "")} for row in servers],
            "dhcp_servers_wanted": wanted, "dhcp_no_standby": len(servers) < wanted}


@login_required
def network_edit(request: HttpRequest, network_id: int) -> HttpResponse:
    network = _network(request, network_id)
    form = forms.NetworkEditForm(_posted(request), initial={"name": network.name})
    return _form_page(request, form, "portal/network_edit.html", {"network": network},
                      save=lambda: form.save(network=network, actor=request.user),
                      done=lambda _: (f"Network renamed to {network.name}.", network.get_absolute_url()))


@login_required
def network_delete(request: HttpRequest, network_id: int) -> HttpResponse:
    network = _network(request, network_id)
    return _confirmed(request, lambda: services.network_delete(network=network, actor=request.user),
                      done=f"Network {network.name} is being deleted.", next_url=reverse("portal:network-list"),
                      title=f"Delete network {network.name}",
                      question=f"Delete network {network.name}, its {network.subnets.count()} subnet(s) and "
                               f"{network.instances.count()} instance(s)? Their namespaces and dnsmasq are removed.",
                      cancel_url=network.get_absolute_url())


# --- subnets -------------------------------------------------------------------------------------------

@login_required
def subnet_create(request: HttpRequest, network_id: int) -> HttpResponse:
    network = _network(request, network_id)
    form = forms.SubnetCreateForm(_posted(request))
    return _form_page(request, form, "portal/subnet_form.html", {"network": network},
                      save=lambda: form.save(network=network, actor=request.user),
                      done=lambda subnet: (f"Subnet {subnet.cidr} added.", network.get_absolute_url()))


@login_required
def subnet_edit(request: HttpRequest, subnet_id: int) -> HttpResponse:
    subnet = _subnet(request, subnet_id)
    form = forms.SubnetEditForm(_posted(request),
                                initial={"name": subnet.name, **forms.SubnetEditForm.initial_for(subnet)})
    return _form_page(request, form, "portal/subnet_form.html", {"network": subnet.network, "subnet": subnet},
                      save=lambda: form.save(subnet=subnet, actor=request.user),
                      done=lambda _: (f"Subnet {subnet.cidr} updated; dnsmasq reloads it.",
                                      subnet.network.get_absolute_url()))


@login_required
def subnet_delete(request: HttpRequest, subnet_id: int) -> HttpResponse:
    subnet = _subnet(request, subnet_id)
    return _confirmed(request, lambda: services.subnet_delete(subnet=subnet, actor=request.user),
                      done=f"Subnet {subnet.cidr} deleted.", next_url=subnet.network.get_absolute_url(),
                      title=f"Delete subnet {subnet.cidr}",
                      question=f"Delete subnet {subnet.cidr} of network {subnet.network.name}?")


# --- instances -----------------------------------------------------------------------------------------

@login_required
def instance_create(request: HttpRequest, network_id: int) -> HttpResponse:
    network = _network(request, network_id)
    form = forms.InstanceCreateForm(_posted(request), network=network)
    return _form_page(request, form, "portal/instance_form.html", {"network": network},
                      save=lambda: form.save(actor=request.user),
                      done=lambda instance: (f"Instance {instance.hostname} created with {instance.ip_address}.",
                                             reverse("portal:instance-detail", args=[instance.pk])))


@login_required
def instance_detail(request: HttpRequest, instance_id: int) -> HttpResponse:
    instance = _instance(request, instance_id)
    context = {
        "instance": instance,
        "network": instance.network,
        "lease": page_selectors.instance_lease(instance),
        "namespace": names().inst_ns(instance.kernel_id),
        "router": page_selectors.instance_router(instance),
        "floating_ip": page_selectors.instance_floating_ip(instance),
        "node_state": selectors.node_states([instance.node]).get(instance.node, ""),
    }
    return render_page(request, "portal/instance_detail.html", context)


@login_required
def instance_edit(request: HttpRequest, instance_id: int) -> HttpResponse:
    instance = _instance(request, instance_id)
    initial = {"ip_address": instance.ip_address if instance.fixed_ip else ""}
    form = forms.InstanceEditForm(_posted(request), initial=initial)
    return _form_page(request, form, "portal/instance_form.html", {"network": instance.network, "instance": instance},
                      save=lambda: form.save(instance=instance, actor=request.user),
                      done=lambda _: (f"Instance {instance.hostname} now uses {instance.ip_address}.",
                                      reverse("portal:instance-detail", args=[instance.pk])))


@login_required
def instance_delete(request: HttpRequest, instance_id: int) -> HttpResponse:
    instance = _instance(request, instance_id)
    return _confirmed(request, lambda: services.instance_delete(instance=instance, actor=request.user),
                      done=f"Instance {instance.hostname} is being deleted.",
                      next_url=instance.network.get_absolute_url(), title=f"Delete instance {instance.hostname}",
                      question=f"Delete instance {instance.hostname} ({instance.ip_address})? Its lease is released.")


# --- members and audit (tenant admins) -----------------------------------------------------------------

@login_required
def member_list(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = page_selectors.administered_tenant(request.user, tenant_slug)
    form = forms.MemberAddForm(_posted(request))
    context = {"tenant": tenant, "memberships": page_selectors.tenant_memberships(tenant), "roles": Role.choices}
    return _form_page(request, form, "portal/member_list.html", context,
                      save=lambda: form.save(tenant=tenant, actor=request.user),
                      done=lambda membership: (f"{membership.user} is now {membership.get_role_display()} of {tenant}.",
                                               reverse("portal:member-list", args=[tenant.slug])))


@login_required
@require_POST
def member_role(request: HttpRequest, tenant_slug: str, membership_id: int) -> HttpResponse:
    tenant = page_selectors.administered_tenant(request.user, tenant_slug)
    membership = get_object_or_404(page_selectors.tenant_memberships(tenant), pk=membership_id)
    form = forms.MemberRoleForm(request.POST)
    if form.is_valid() and form.save(membership=membership, actor=request.user):
        messages.success(request, f"{membership.user} is now {form.cleaned_data['role']}.")
    else:
        messages.error(request, "; ".join(m for errors in form.errors.values() for m in errors))
    return redirect("portal:member-list", tenant.slug)


@login_required
def member_remove(request: HttpRequest, tenant_slug: str, membership_id: int) -> HttpResponse:
    tenant = page_selectors.administered_tenant(request.user, tenant_slug)
    membership = get_object_or_404(page_selectors.tenant_memberships(tenant), pk=membership_id)
    return _confirmed(request, lambda: services.membership_remove(membership=membership, actor=request.user),
                      done=f"{membership.user} removed from {tenant}.",
                      next_url=reverse("portal:member-list", args=[tenant.slug]),
                      title=f"Remove {membership.user}", action="Remove",
                      question=f"Remove {membership.user} from {tenant}? They lose access to its networks.")


@login_required
def audit_log(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = page_selectors.administered_tenant(request.user, tenant_slug)
    page = Paginator(page_selectors.tenant_audit(tenant), AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    return render_page(request, "portal/audit_log.html", {"tenant": tenant, "page": page})


# --- API tokens ----------------------------------------------------------------------------------------

@login_required
def token_list(request: HttpRequest) -> HttpResponse:
    """List the user's tokens; a POST creates one and shows its secret in this response only."""
    form = forms.TokenCreateForm(_posted(request))
    secret = None
    if request.method == "POST" and form.is_valid():
        created = form.submit(token_services.api_token_create, user=request.user, name=form.cleaned_data["name"],
                              actor=request.user)
        if created is not None:
            secret = created[1]
            form = forms.TokenCreateForm()
    return render_page(request, "portal/token_list.html",
                       {"tokens": token_selectors.tokens_for_user(request.user), "form": form, "secret": secret})


@login_required
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    token = get_object_or_404(token_selectors.tokens_for_user(request.user), pk=token_id)
    return _confirmed(request, lambda: token_services.api_token_revoke(token=token, actor=request.user),
                      done=f"Token {token.prefix}… ({token.name}) revoked.", next_url=reverse("portal:token-list"),
                      title=f"Revoke token {token.name}", action="Revoke",
                      question=f"Revoke {token.prefix}… ({token.name})? Programs using it stop working at once.")


# --- routers and floating IPs (issue 14): members see, the tenant's admins act ----------------------------

def _router(request: HttpRequest, router_id: int):
    """Without the selector's interface prefetch: the services publish ``router_data`` of the object they are
    given after changing its interfaces, and a stale prefetch cache would tell the browser the old subnets."""
    return get_object_or_404(selectors.routers_for_user(request.user).prefetch_related(None), pk=router_id)


def _floating_ip(request: HttpRequest, floating_ip_id: int):
    return get_object_or_404(selectors.floating_ips_for_user(request.user), pk=floating_ip_id)


def _require_admin(request: HttpRequest, tenant) -> None:
    """After the lookup (another tenant's object is a 404 first): only the tenant's admins change its routing."""
    if tenant is None or not selectors.is_tenant_admin(request.user, tenant):
        raise PermissionDenied("Only the tenant's administrators change routers and floating IPs.")


def _acting(request: HttpRequest, tenant) -> bool:
    """A POST must come from a tenant admin; a GET is fine for any member."""
    if request.method == "POST":
        _require_admin(request, tenant)
    return selectors.is_tenant_admin(request.user, tenant)


def _attachable_subnets(request: HttpRequest, router):
    return selectors.subnets_for_user(request.user, router.tenant).filter(
        network__external=False, router_interface__isnull=True
    ).select_related("network").order_by("network__name", "id")


def _externals(request: HttpRequest):
    return selectors.external_networks_for_user(request.user).order_by("name")


@login_required
def router_list(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    routers_ = selectors.routers_for_user(request.user, tenant).order_by("name") if tenant else []
    can_act = tenant is not None and selectors.is_tenant_admin(request.user, tenant)
    return render_page(request, "portal/router_list.html", {"routers": routers_, "can_act": can_act})


@login_required
def router_create(request: HttpRequest) -> HttpResponse:
    tenant = current_tenant(request)
    _require_admin(request, tenant)
    form = forms.RouterCreateForm(_posted(request), choices=_externals(request))
    return _form_page(request, form, "portal/router_form.html", {"tenant": tenant},
                      save=lambda: form.save(tenant=tenant, actor=request.user),
                      done=lambda router: (f"Router {router.name} created; it is being set up.",
                                           reverse("portal:router-detail", args=[router.pk])))


def _router_page(request: HttpRequest, router, *, interface_form=None, gateway_form=None) -> HttpResponse:
    """The router's detail page; a refused attach or gateway form comes back bound, errors beside its field."""
    context = {
        "router": router,
        "interfaces": router.interfaces.select_related("subnet__network").order_by("subnet__cidr"),
        "floating_ips": selectors.floating_ips_for_user(request.user, router.tenant).filter(
            instance__subnet__router_interface__router=router).order_by("address"),
        "interface_form": interface_form or forms.RouterInterfaceForm(choices=_attachable_subnets(request, router)),
        "gateway_form": gateway_form or forms.RouterGatewayForm(choices=_externals(request)),
        "can_act": selectors.is_tenant_admin(request.user, router.tenant),
    }
    return render_page(request, "portal/router_detail.html", context)


def _router_form_posted(request: HttpRequest, router, form: forms.ServiceForm, *, slot: str,
                        done: Callable[[Any], str]) -> HttpResponse:
    """A POST of one of the router page's forms (``slot`` in its context): a change the service accepts says
    ``done(saved)`` on the page; a refused one shows the page again with that form bound."""
    if form.is_valid() and (saved := form.save(router=router, actor=request.user)):
        messages.success(request, done(saved))
        return redirect("portal:router-detail", router.pk)
    return _router_page(request, router, **{slot: form})


@login_required
def router_detail(request: HttpRequest, router_id: int) -> HttpResponse:
    return _router_page(request, _router(request, router_id))


@login_required
@require_POST
def router_interface_add(request: HttpRequest, router_id: int) -> HttpResponse:
    router = _router(request, router_id)
    _require_admin(request, router.tenant)
    form = forms.RouterInterfaceForm(request.POST, choices=_attachable_subnets(request, router))
    return _router_form_posted(request, router, form, slot="interface_form",
                               done=lambda interface: f"Subnet {interface.subnet.cidr} attached to {router.name}.")


@login_required
def router_interface_remove(request: HttpRequest, router_id: int, subnet_id: int) -> HttpResponse:
    router = _router(request, router_id)
    interface = get_object_or_404(selectors.router_interfaces_for_user(request.user).filter(router=router),
                                  subnet_id=subnet_id)
    _acting(request, router.tenant)
    return _confirmed(request, lambda: routers.router_interface_remove(interface=interface, actor=request.user),
                           done=f"Subnet {interface.subnet.cidr} detached from {router.name}.",
                           next_url=reverse("portal:router-detail", args=[router.pk]), action="Detach",
                           title=f"Detach {interface.subnet.cidr}",
                           question=f"Detach subnet {interface.subnet.cidr} from router {router.name}? Its instances "
                                    "lose their gateway.")


@login_required
@require_POST
def router_gateway_set(request: HttpRequest, router_id: int) -> HttpResponse:
    router = _router(request, router_id)
    _require_admin(request, router.tenant)
    form = forms.RouterGatewayForm(request.POST, choices=_externals(request))
    return _router_form_posted(request, router, form, slot="gateway_form",
                               done=lambda saved: f"{router.name} now reaches {saved.external_network.name} as "
                                                  f"{saved.external_ip}.")


@login_required
def router_gateway_clear(request: HttpRequest, router_id: int) -> HttpResponse:
    router = _router(request, router_id)
    _acting(request, router.tenant)
    return _confirmed(request, lambda: routers.router_clear_gateway(router=router, actor=request.user),
                           done=f"{router.name} has no external gateway now.",
                           next_url=reverse("portal:router-detail", args=[router.pk]), action="Clear gateway",
                           title=f"Clear the gateway of {router.name}",
                           question=f"Remove {router.name}'s address {router.external_ip} on "
                                    f"{router.external_network}? Its subnets lose outside access (SNAT).")


@login_required
def router_delete(request: HttpRequest, router_id: int) -> HttpResponse:
    router = _router(request, router_id)
    _acting(request, router.tenant)
    return _confirmed(request, lambda: routers.router_delete(router=router, actor=request.user),
                           done=f"Router {router.name} is being deleted.", next_url=reverse("portal:router-list"),
                           title=f"Delete router {router.name}",
                           question=f"Delete router {router.name} and its namespace? Attached subnets lose their "
                                    "gateway.")


@login_required
def floating_ip_list(request: HttpRequest) -> HttpResponse:
    """The tenant's floating IPs; a POST (tenant admins) allocates one."""
    tenant = current_tenant(request)
    if request.method == "POST":
        _require_admin(request, tenant)
    can_act = tenant is not None and selectors.is_tenant_admin(request.user, tenant)
    form = forms.FloatingIPAllocateForm(_posted(request), choices=_externals(request))
    fips = selectors.floating_ips_for_user(request.user, tenant).order_by("address") if tenant else []
    return _form_page(request, form, "portal/floating_ip_list.html", {"floating_ips": fips, "can_act": can_act},
                      save=lambda: form.save(tenant=tenant, actor=request.user),
                      done=lambda fip: (f"Floating IP {fip.address} allocated.",
                                        reverse("portal:floating-ip-detail", args=[fip.pk])))


@login_required
def floating_ip_detail(request: HttpRequest, floating_ip_id: int) -> HttpResponse:
    """One floating IP; a POST (tenant admins) associates it, or moves it, to an instance."""
    fip = _floating_ip(request, floating_ip_id)
    can_act = _acting(request, fip.tenant)
    choices = selectors.instances_for_user(request.user, fip.tenant).exclude(network__external=True).order_by(
        "hostname")
    form = forms.FloatingIPAssociateForm(_posted(request), choices=choices, initial={"instance": fip.instance_id})
    return _form_page(request, form, "portal/floating_ip_detail.html",
                      {"fip": fip, "router": fip.router if fip.instance_id else None, "can_act": can_act},
                      save=lambda: form.save(floating_ip=fip, actor=request.user),
                      done=lambda saved: (f"{saved.address} now reaches {saved.instance.hostname}.",
                                          reverse("portal:floating-ip-detail", args=[saved.pk])))


@login_required
def floating_ip_disassociate(request: HttpRequest, floating_ip_id: int) -> HttpResponse:
    fip = _floating_ip(request, floating_ip_id)
    _acting(request, fip.tenant)
    return _confirmed(request, lambda: routers.floating_ip_disassociate(floating_ip=fip, actor=request.user),
                           done=f"{fip.address} disassociated.",
                           next_url=reverse("portal:floating-ip-detail", args=[fip.pk]), action="Disassociate",
                           title=f"Disassociate {fip.address}",
                           question=f"Stop forwarding {fip.address} to {fip.instance}? Its connections are cut.")


@login_required
def floating_ip_release(request: HttpRequest, floating_ip_id: int) -> HttpResponse:
    fip = _floating_ip(request, floating_ip_id)
    _acting(request, fip.tenant)
    return _confirmed(request, lambda: routers.floating_ip_release(floating_ip=fip, actor=request.user),
                           done=f"{fip.address} released.", next_url=reverse("portal:floating-ip-list"),
                           action="Release", title=f"Release {fip.address}",
                           question=f"Give {fip.address} back to {fip.network.name}? Someone else may get it next.")


# --- nodes (superusers; everyone else gets 404, as for another tenant's object) ----------------------------

def _node(request: HttpRequest, node_id: int):
    return get_object_or_404(selectors.nodes_for_user(request.user), pk=node_id)


@login_required
def node_list(request: HttpRequest) -> HttpResponse:
    """Every node: its agent's state and heartbeat, roles, VTEP, what runs on it, its load."""
    if not request.user.is_superuser:
        raise Http404("No such page.")
    rows = page_selectors.node_rows(selectors.nodes_for_user(request.user))
    return render_page(request, "portal/node_list.html", {"rows": rows})


@login_required
def node_detail(request: HttpRequest, node_id: int) -> HttpResponse:
    """One node and every object the database puts on it, a failed one with its reason."""
    node = _node(request, node_id)
    [row] = page_selectors.node_rows(selectors.nodes_for_user(request.user).filter(pk=node.pk))
    context = {"row": row, "node": node, "duties": page_selectors.node_duties(node),
               "instances": page_selectors.node_instances(node), "routers": page_selectors.node_routers(node)}
    return render_page(request, "portal/node_detail.html", context)


@login_required
def node_drain(request: HttpRequest, node_id: int) -> HttpResponse:
    """Before maintenance (confirmed): the node takes no new work and its DHCP duties move off."""
    node = _node(request, node_id)
    here = reverse("portal:node-detail", args=[node.pk])
    if request.method != "POST":
        question = (f"Drain {node.name} for maintenance? It takes no new work, and its DHCP servers move to other "
                    "live DHCP nodes (each keeps its address). Its instances stay on it.")
        return render_page(request, "portal/confirm.html", {"title": f"Drain node {node.name}", "action": "Drain",
                                                            "question": question, "cancel_url": here})
    moved = failover.node_drain(node.name)
    left = page_selectors.node_duties(node).count()
    messages.success(request, f"Node {node.name} is drained: {moved} DHCP duties moved off"
                              + (f", {left} had nowhere to go." if left else "."))
    return redirect(here)


@login_required
def node_undrain(request: HttpRequest, node_id: int) -> HttpResponse:
    node = _node(request, node_id)
    if node.state != NodeState.DRAINED and request.method == "POST":
        messages.error(request, f"Node {node.name} is not drained.")
        return redirect("portal:node-detail", node.pk)
    return _confirmed(request, lambda: failover.node_undrain(node.name), action="Undrain",
                      done=f"Node {node.name} takes new work again.",
                      next_url=reverse("portal:node-detail", args=[node.pk]), title=f"Undrain node {node.name}",
                      question=f"Let {node.name} take new work again? Duties that moved away stay where they are.",
                      cancel_url=reverse("portal:node-detail", args=[node.pk]))
