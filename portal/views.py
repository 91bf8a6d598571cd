"""Portal views: look the object up through a selector (404 for anything not the user's), run a form, render.

No rules live here: forms call services, services validate; a view only wires request → form → redirect.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from api import selectors as token_selectors
from api import services as token_services
from tenants import selectors, services
from tenants.choices import Role
from tenants.hostspecs import names

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


def _confirm(request: HttpRequest, *, title: str, question: str, cancel_url: str, action: str = "Delete"
             ) -> HttpResponse:
    return render_page(request, "portal/confirm.html",
                       {"title": title, "question": question, "cancel_url": cancel_url, "action": action})


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
    if request.method == "POST" and form.is_valid():
        network = form.save(tenant=tenant, actor=request.user)
        if network is not None:
            messages.success(request, f"Network {network.name} created; it is being set up.")
            return redirect("portal:network-detail", network.pk)
    return render_page(request, "portal/network_form.html", {"form": form, "tenant": tenant})


@login_required
def network_detail(request: HttpRequest, network_id: int) -> HttpResponse:
    network = _network(request, network_id)
    context = {
        "network": network,
        "subnets": network.subnets.prefetch_related("allocation_pools").order_by("id"),
        "instances": page_selectors.network_instances(network),
        "leases": page_selectors.network_leases(network),
        "events": page_selectors.network_events(network),
    }
    return render_page(request, "portal/network_detail.html", context)


@login_required
def network_edit(request: HttpRequest, network_id: int) -> HttpResponse:
    network = _network(request, network_id)
    form = forms.NetworkEditForm(_posted(request), initial={"name": network.name})
    if request.method == "POST" and form.is_valid() and form.save(network=network, actor=request.user):
        messages.success(request, f"Network renamed to {network.name}.")
        return redirect("portal:network-detail", network.pk)
    return render_page(request, "portal/network_edit.html", {"form": form, "network": network})


@login_required
def network_delete(request: HttpRequest, network_id: int) -> HttpResponse:
    network = _network(request, network_id)
    if request.method == "POST":
        services.network_delete(network=network, actor=request.user)
        messages.success(request, f"Network {network.name} is being deleted.")
        return redirect("portal:network-list")
    return _confirm(request, title=f"Delete network {network.name}",
                    question=f"Delete network {network.name}, its {network.subnets.count()} subnet(s) and "
                             f"{network.instances.count()} instance(s)? Their namespaces and dnsmasq are removed.",
                    cancel_url=network.get_absolute_url())


# --- subnets -------------------------------------------------------------------------------------------

@login_required
def subnet_create(request: HttpRequest, network_id: int) -> HttpResponse:
    network = _network(request, network_id)
    form = forms.SubnetCreateForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        subnet = form.save(network=network, actor=request.user)
        if subnet is not None:
            messages.success(request, f"Subnet {subnet.cidr} added.")
            return redirect("portal:network-detail", network.pk)
    return render_page(request, "portal/subnet_form.html", {"form": form, "network": network})


@login_required
def subnet_edit(request: HttpRequest, subnet_id: int) -> HttpResponse:
    subnet = _subnet(request, subnet_id)
    form = forms.SubnetEditForm(_posted(request),
                                initial={"name": subnet.name, **forms.SubnetEditForm.initial_for(subnet)})
    if request.method == "POST" and form.is_valid() and form.save(subnet=subnet, actor=request.user):
        messages.success(request, f"Subnet {subnet.cidr} updated; dnsmasq reloads it.")
        return redirect("portal:network-detail", subnet.network_id)
    return render_page(request, "portal/subnet_form.html",
                       {"form": form, "network": subnet.network, "subnet": subnet})


@login_required
def subnet_delete(request: HttpRequest, subnet_id: int) -> HttpResponse:
    subnet = _subnet(request, subnet_id)
    if request.method == "POST":
        form = forms.ServiceForm(data={})
        form.is_valid()
        form.submit(services.subnet_delete, subnet=subnet, actor=request.user)
        for error in form.non_field_errors():
            messages.error(request, error)
        if not form.errors:
            messages.success(request, f"Subnet {subnet.cidr} deleted.")
        return redirect("portal:network-detail", subnet.network_id)
    return _confirm(request, title=f"Delete subnet {subnet.cidr}",
                    question=f"Delete subnet {subnet.cidr} of network {subnet.network.name}?",
                    cancel_url=subnet.network.get_absolute_url())


# --- instances -----------------------------------------------------------------------------------------

@login_required
def instance_create(request: HttpRequest, network_id: int) -> HttpResponse:
    network = _network(request, network_id)
    form = forms.InstanceCreateForm(_posted(request), network=network)
    if request.method == "POST" and form.is_valid():
        instance = form.save(actor=request.user)
        if instance is not None:
            messages.success(request, f"Instance {instance.hostname} created with {instance.ip_address}.")
            return redirect("portal:instance-detail", instance.pk)
    return render_page(request, "portal/instance_form.html", {"form": form, "network": network})


@login_required
def instance_detail(request: HttpRequest, instance_id: int) -> HttpResponse:
    instance = _instance(request, instance_id)
    context = {
        "instance": instance,
        "network": instance.network,
        "lease": page_selectors.instance_lease(instance),
        "namespace": names().inst_ns(instance.kernel_id),
    }
    return render_page(request, "portal/instance_detail.html", context)


@login_required
def instance_edit(request: HttpRequest, instance_id: int) -> HttpResponse:
    instance = _instance(request, instance_id)
    initial = {"ip_address": instance.ip_address if instance.fixed_ip else ""}
    form = forms.InstanceEditForm(_posted(request), initial=initial)
    if request.method == "POST" and form.is_valid() and form.save(instance=instance, actor=request.user):
        messages.success(request, f"Instance {instance.hostname} now uses {instance.ip_address}.")
        return redirect("portal:instance-detail", instance.pk)
    return render_page(request, "portal/instance_form.html",
                       {"form": form, "network": instance.network, "instance": instance})


@login_required
def instance_delete(request: HttpRequest, instance_id: int) -> HttpResponse:
    instance = _instance(request, instance_id)
    if request.method == "POST":
        services.instance_delete(instance=instance, actor=request.user)
        messages.success(request, f"Instance {instance.hostname} is being deleted.")
        return redirect("portal:network-detail", instance.network_id)
    return _confirm(request, title=f"Delete instance {instance.hostname}",
                    question=f"Delete instance {instance.hostname} ({instance.ip_address})? Its lease is released.",
                    cancel_url=instance.network.get_absolute_url())


# --- members and audit (tenant admins) -----------------------------------------------------------------

@login_required
def member_list(request: HttpRequest, tenant_slug: str) -> HttpResponse:
    tenant = page_selectors.administered_tenant(request.user, tenant_slug)
    form = forms.MemberAddForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        membership = form.save(tenant=tenant, actor=request.user)
        if membership is not None:
            messages.success(request, f"{membership.user} is now {membership.get_role_display()} of {tenant}.")
            return redirect("portal:member-list", tenant.slug)
    return render_page(request, "portal/member_list.html", {
        "tenant": tenant, "memberships": page_selectors.tenant_memberships(tenant), "form": form,
        "roles": Role.choices,
    })


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
    if request.method == "POST":
        try:
            services.membership_remove(membership=membership, actor=request.user)
        except ValidationError as exc:  # the tenant's last admin
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, f"{membership.user} removed from {tenant}.")
        return redirect("portal:member-list", tenant.slug)
    return _confirm(request, title=f"Remove {membership.user}", action="Remove",
                    question=f"Remove {membership.user} from {tenant}? They lose access to its networks.",
                    cancel_url=reverse("portal:member-list", args=[tenant.slug]))


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
    if request.method == "POST":
        token_services.api_token_revoke(token=token, actor=request.user)
        messages.success(request, f"Token {token.prefix}… ({token.name}) revoked.")
        return redirect("portal:token-list")
    return _confirm(request, title=f"Revoke token {token.name}", action="Revoke",
                    question=f"Revoke {token.prefix}… ({token.name})? Programs using it stop working at once.",
                    cancel_url=reverse("portal:token-list"))
