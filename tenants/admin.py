"""Django admin for every model. Writes go through the same services as pages and the API.

Why override ``save_model``/``delete_model``: the admin would otherwise save rows directly, skipping IPAM,
quotas, audit and the host jobs that make a network real.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.forms import BaseInlineFormSet, ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from . import failover, routers, services
from .choices import LeaseState, Role
from .models import (
    AllocationPool,
    AuditEntry,
    DhcpServer,
    FloatingIP,
    Instance,
    Lease,
    LeaseEvent,
    Membership,
    Network,
    Node,
    Router,
    RouterInterface,
    Subnet,
    Tenant,
)
from .nodes import agent_state


class _TrialRollback(Exception):
    """Raised to roll back a service call made only to validate a form."""


class ServiceBackedAdmin(admin.ModelAdmin):
    """Route create/update through ``call_service``; its ValidationErrors become form errors.

    The form's ``clean()`` runs the service inside a savepoint that is always rolled back (on-commit jobs and
    events registered there are discarded), so the admin shows exactly the service layer's messages; the real
    call happens in ``save_model``.
    """

    def call_service(self, request: HttpRequest, form: ModelForm, change: bool) -> Any:
        raise NotImplementedError

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        model_admin = self

        class ServiceValidatedForm(form_class):  # type: ignore[misc, valid-type]
            def clean(self) -> dict[str, Any]:
                cleaned = super().clean()
                if self.errors:
                    return cleaned
                try:
                    with transaction.atomic():
                        model_admin.call_service(request, self, change)
                        raise _TrialRollback
                except _TrialRollback:
                    pass
                except ValidationError as exc:
                    if hasattr(exc, "error_dict"):
                        for field, errors in exc.message_dict.items():
                            self.add_error(field if field in self.fields else None, errors)
                    else:
                        self.add_error(None, exc.messages)
                return cleaned

            def _post_clean(self) -> None:
                # The service validates the model (including constraints); skip ModelForm's own
                # instance validation, which would check half-built rows the service fills in itself.
                pass

        return ServiceValidatedForm

    def save_model(self, request: HttpRequest, obj: Any, form: ModelForm, change: bool) -> None:
        saved = self.call_service(request, form, change)
        if saved is not None:
            obj.__dict__.update(saved.__dict__)

    def delete_service(self, request: HttpRequest, obj: Any) -> None:
        """Delete ``obj`` through its service (which may refuse with a ValidationError)."""
        raise NotImplementedError

    def get_deleted_objects(self, objs: Any, request: HttpRequest) -> tuple[list[Any], dict[str, int], set[str],
                                                                               list[Any]]:
        # The services delete in their own order (the agent removes instances before the subnets they protect),
        # so Django's collector's "protected" list does not apply; a service that refuses says why itself.
        deleted, counts, perms_needed, _protected = super().get_deleted_objects(objs, request)
        return deleted, counts, perms_needed, []

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self.delete_service(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        # The bulk "delete selected" action would otherwise delete rows directly: no audit, and no job to take the
        # host state down. A refusal of one row (a subnet in use, the last admin) is reported, the rest go.
        for obj in queryset:
            try:
                self.delete_service(request, obj)
            except ValidationError as exc:
                self.message_user(request, f"{obj} was not deleted: {' '.join(exc.messages)}", messages.ERROR)

    def delete_view(self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
                    ) -> HttpResponse:
        try:
            return super().delete_view(request, object_id, extra_context)
        except ValidationError as exc:  # the service refused: say why on the confirmation page, delete nothing
            self.message_user(request, " ".join(exc.messages), messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())


class ReadOnlyInline(admin.TabularInline):
    """Rows shown on their parent's page; they are written through their own admin (and so their services)."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _apply_memberships(formset: BaseInlineFormSet, actor: AbstractBaseUser | None) -> None:
    """Write the tenant page's member rows through the membership services.

    Admins are set first and removals come last, so the last-admin rule judges the tenant's final set of admins
    (promoting B and demoting A in one save is allowed). Fills in what ``formset.save()`` would have recorded
    for the admin's change message.
    """
    tenant = formset.instance
    deleted = [form for form in formset.forms if formset.can_delete and form.cleaned_data.get("DELETE")]
    changed = [form for form in formset.forms if form.has_changed() and form not in deleted]
    removed = [form.instance for form in deleted if form.instance.pk]
    formset.new_objects, formset.changed_objects = [], []
    for form in sorted(changed, key=lambda f: f.cleaned_data["role"] != Role.ADMIN):
        membership = services.membership_set(tenant=tenant, user=form.cleaned_data["user"],
                                             role=form.cleaned_data["role"], actor=actor)
        if form.instance.pk is None:
            formset.new_objects.append(membership)
        else:
            formset.changed_objects.append((membership, form.changed_data))
            if "user" in form.changed_data:
                removed.append(form.instance)  # the row now names another user: the old member goes
    for membership in removed:
        services.membership_remove(membership=membership, actor=actor)
    formset.deleted_objects = removed


class MembershipFormSet(BaseInlineFormSet):
    """Validates the member rows by running the services in a savepoint that is rolled back (as
    ``ServiceBackedAdmin`` does for the main form), so the last-admin rule shows up as a form error."""

    def clean(self) -> None:
        super().clean()
        if self.instance.pk is None or any(self.errors):
            return  # a new tenant has no admins to lose
        try:
            with transaction.atomic():
                _apply_memberships(self, actor=None)
                raise _TrialRollback
        except _TrialRollback:
            pass
        except ValidationError as exc:
            raise ValidationError(exc.messages) from None


class CountColumns:
    """Changelist columns for the ``_instances`` and ``_leases`` counts the admin's queryset annotates."""

    @admin.display(description="instances", ordering="_instances")
    def instance_count(self, obj: Any) -> int:
        return obj._instances

    @admin.display(description="active leases", ordering="_leases")
    def lease_count(self, obj: Any) -> int:
        return obj._leases


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = MembershipFormSet
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Tenant)
class TenantAdmin(ServiceBackedAdmin):
    list_display = ["name", "slug", "network_count", "quota_networks", "quota_subnets", "quota_instances",
                    "deleting"]
    list_filter = ["deleting"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    def call_service(self, request: HttpRequest, form: ModelForm, change: bool) -> Tenant:
        data = {field: form.cleaned_data[field] for field in services.TENANT_FIELDS}
        if change:
            return services.tenant_update(tenant=Tenant.objects.get(pk=form.instance.pk), actor=request.user, **data)
        return services.tenant_create(actor=request.user, **data)

    def save_formset(self, request: HttpRequest, form: ModelForm, formset: BaseInlineFormSet, change: bool) -> None:
        _apply_memberships(formset, actor=request.user)

    def delete_service(self, request: HttpRequest, obj: Tenant) -> None:
        services.tenant_delete(tenant=obj, actor=request.user)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        return super().get_queryset(request).annotate(_networks=Count("networks"))

    @admin.display(description="networks", ordering="_networks")
    def network_count(self, obj: Tenant) -> int:
        return obj._networks  # type: ignore[attr-defined]


class SubnetInline(ReadOnlyInline):
    model = Subnet
    fields = ["cidr", "gateway", "dhcp_address", "domain_name", "lease_seconds", "enable_dhcp"]
    readonly_fields = fields
    show_change_link = True


@admin.register(Network)
class NetworkAdmin(CountColumns, ServiceBackedAdmin):
    list_display = ["name", "tenant", "cidrs", "status", "node", "instance_count", "lease_count", "kernel_id",
                    "updated_at"]
    list_filter = ["status", "tenant", "node"]
    search_fields = ["name", "kernel_id", "tenant__name", "subnets__cidr"]
    readonly_fields = ["kernel_id", "node", "status", "status_reason", "created_at", "updated_at"]
    fields = ["tenant", "name", *readonly_fields]
    inlines = [SubnetInline]
    actions = ["rerealise"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Network]:
        return super().get_queryset(request).select_related("tenant").prefetch_related("subnets").annotate(
            _instances=Count("instances", distinct=True),
            _leases=Count("subnets__leases", filter=Q(subnets__leases__state=LeaseState.ACTIVE), distinct=True),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Network | None = None) -> list[str]:
        return [*self.readonly_fields, "tenant"] if obj else self.readonly_fields

    @admin.display(description="CIDRs")
    def cidrs(self, obj: Network) -> str:
        return ", ".join(s.cidr for s in obj.subnets.all()) or "—"

    def call_service(self, request: HttpRequest, form: ModelForm, change: bool) -> Network:
        data = form.cleaned_data
        if change:
            network = Network.objects.get(pk=form.instance.pk)
            return services.network_update(network=network, name=data["name"], actor=request.user)
        return services.network_create(tenant=data["tenant"], name=data["name"], actor=request.user)

    def delete_service(self, request: HttpRequest, obj: Network) -> None:
        services.network_delete(network=obj, actor=request.user)

    @admin.action(description="Re-realise selected networks on their node")
    def rerealise(self, request: HttpRequest, queryset: QuerySet[Network]) -> None:
        count = services.network_rerealise(networks=list(queryset), actor=request.user)
        self.message_user(request, f"Queued {count} network(s) for realisation.", messages.SUCCESS)


class AllocationPoolInline(ReadOnlyInline):
    model = AllocationPool
    readonly_fields = ["start", "end"]


class InstanceInline(ReadOnlyInline):
    model = Instance
    fk_name = "subnet"
    fields = ["hostname", "ip_address", "mac_address", "status"]
    readonly_fields = fields
    show_change_link = True


@admin.register(Subnet)
class SubnetAdmin(CountColumns, ServiceBackedAdmin):
    list_display = ["cidr", "network", "tenant", "gateway", "dhcp_address", "enable_dhcp", "instance_count",
                    "lease_count"]
    list_filter = ["enable_dhcp", "ip_version", "network__tenant"]
    search_fields = ["cidr", "network__name", "network__tenant__name"]
    fields = ["network", "name", "cidr", "gateway", "dhcp_address", "dns_nameservers", "domain_name",
              "lease_seconds", "enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode"]
    inlines = [AllocationPoolInline, InstanceInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Subnet]:
        return super().get_queryset(request).select_related("network__tenant").annotate(
            _instances=Count("instances", distinct=True),
            _leases=Count("leases", filter=Q(leases__state=LeaseState.ACTIVE), distinct=True),
        )

    def get_readonly_fields(self, request: HttpRequest, obj: Subnet | None = None) -> list[str]:
        return ["network", "cidr", "ipv6_ra_mode", "ipv6_address_mode"] if obj else []

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        if db_field.name == "dhcp_address" and field is not None:
            # The service picks a default (the first usable address that is not the gateway); without this the
            # model's NOT NULL made the admin demand one the user has no reason to choose.
            field.required = False
            field.help_text = "Leave blank for the first usable address that is not the gateway."
        return field

    @admin.display(description="tenant", ordering="network__tenant__name")
    def tenant(self, obj: Subnet) -> str:
        return obj.network.tenant.name

    def call_service(self, request: HttpRequest, form: ModelForm, change: bool) -> Subnet:
        fields = ["gateway", "dhcp_address", "dns_nameservers", "domain_name", "lease_seconds", "enable_dhcp", "name"]
        data = {f: form.cleaned_data.get(f) for f in fields if f in form.cleaned_data}
        if change:
            return services.subnet_update(subnet=Subnet.objects.get(pk=form.instance.pk), actor=request.user, **data)
        data["gateway"] = data.get("gateway") or services.AUTO
        return services.subnet_create(network=form.cleaned_data["network"], cidr=form.cleaned_data["cidr"],
                                      ipv6_ra_mode=form.cleaned_data.get("ipv6_ra_mode", ""),
                                      ipv6_address_mode=form.cleaned_data.get("ipv6_address_mode", ""),
                                      actor=request.user, **data)

    def delete_service(self, request: HttpRequest, obj: Subnet) -> None:
        services.subnet_delete(subnet=obj, actor=request.user)


@admin.register(Instance)
class InstanceAdmin(ServiceBackedAdmin):
    list_display = ["hostname", "network", "tenant", "ip_address", "ipv6_address", "fixed_ip", "mac_address",
                    "status"]
    list_filter = ["status", "fixed_ip", "network__tenant"]
    search_fields = ["hostname", "ip_address", "mac_address", "network__name", "kernel_id"]
    readonly_fields = ["kernel_id", "mac_address", "ipv6_subnet", "ipv6_address", "status", "status_reason",
                       "created_at", "updated_at"]
    fields = ["network", "subnet", "hostname", "ip_address", *readonly_fields]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Instance]:
        return super().get_queryset(request).select_related("network__tenant", "subnet")

    def get_readonly_fields(self, request: HttpRequest, obj: Instance | None = None) -> list[str]:
        return [*self.readonly_fields, "network", "subnet", "hostname"] if obj else self.readonly_fields

    @admin.display(description="tenant", ordering="network__tenant__name")
    def tenant(self, obj: Instance) -> str:
        return obj.network.tenant.name

    def call_service(self, request: HttpRequest, form: ModelForm, change: bool) -> Instance:
        data = form.cleaned_data
        if change:
            return services.instance_update(instance=Instance.objects.get(pk=form.instance.pk),
                                            ip_address=data.get("ip_address"), actor=request.user)
        return services.instance_create(network=data["network"], subnet=data.get("subnet"),
                                        hostname=data["hostname"], ip_address=data.get("ip_address"),
                                        actor=request.user)

    def delete_service(self, request: HttpRequest, obj: Instance) -> None:
        services.instance_delete(instance=obj, actor=request.user)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Leases and history are written by the host's lease path only."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Lease)
class LeaseAdmin(ReadOnlyAdmin):
    list_display = ["ip_address", "mac_address", "hostname", "subnet", "instance", "state", "expires_at"]
    list_filter = ["state", "subnet__network__tenant"]
    search_fields = ["ip_address", "mac_address", "hostname"]


@admin.register(LeaseEvent)
class LeaseEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "kind", "ip_address", "mac_address", "hostname", "subnet"]
    list_filter = ["kind", "subnet__network__tenant"]
    search_fields = ["ip_address", "mac_address", "hostname"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["at", "tenant", "actor", "action", "object_type", "object_id", "detail"]
    list_filter = ["action", "tenant"]
    search_fields = ["detail", "object_id", "actor__username"]


class SuperuserOnlyAdmin(ReadOnlyAdmin):
    """Node internals are for superusers only (``selectors.nodes_for_user``); nobody deletes them here."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _duty_count() -> Coalesce:
    """How many DHCP servers run on the row's node: one subquery, so the list costs no query per row."""
    servers = DhcpServer.objects.filter(node=OuterRef("name")).values("node").annotate(n=Count("id")).values("n")
    return Coalesce(Subquery(servers), 0)


@admin.register(Node)
class NodeAdmin(SuperuserOnlyAdmin):
    """Agents register and heartbeat their nodes; superusers drain and undrain them (``tenants.failover``)."""

    list_display = ["name", "agent", "vtep_address", "dhcp", "compute", "state", "heartbeat_at", "dhcp_duties"]
    list_filter = ["state", "dhcp", "compute"]
    search_fields = ["name", "vtep_address"]
    actions = ["drain", "undrain"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Node]:
        return super().get_queryset(request).annotate(dhcp_duties=_duty_count())

    @admin.display(description="agent")
    def agent(self, node: Node) -> str:
        return agent_state(node.state, node.heartbeat_at).label

    @admin.display(description="DHCP duties", ordering="dhcp_duties")
    def dhcp_duties(self, node: Node) -> int:
        return node.dhcp_duties

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the actions below are the only changes, and they need superusers (checked in each)

    @admin.action(description="Drain: no new work, DHCP duties move to other live nodes")
    def drain(self, request: HttpRequest, queryset: QuerySet[Node]) -> None:
        if request.user.is_superuser:
            for node in queryset:
                moved = failover.node_drain(node.name)
                self.message_user(request, f"{node.name} drained: {moved} DHCP duties moved off.")

    @admin.action(description="Undrain: take new work again")
    def undrain(self, request: HttpRequest, queryset: QuerySet[Node]) -> None:
        if request.user.is_superuser:
            for node in queryset:
                failover.node_undrain(node.name)
            self.message_user(request, f"{queryset.count()} node(s) undrained.")


@admin.register(DhcpServer)
class DhcpServerAdmin(SuperuserOnlyAdmin):
    """A network's DHCP servers and the nodes running them (moved by node loss and drain, never by hand)."""

    list_display = ["network", "tenant", "rank", "node", "addresses_shown"]
    list_filter = ["node", "rank", "network__tenant"]
    search_fields = ["node", "network__name"]
    list_select_related = ["network__tenant"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[DhcpServer]:
        return super().get_queryset(request).prefetch_related("addresses")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a tenant or network here cascades to its servers, which the admin allows only if they are
        # deletable; no bulk action offers it for the servers themselves.
        return request.user.is_superuser

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="tenant", ordering="network__tenant__name")
    def tenant(self, server: DhcpServer) -> Tenant:
        return server.network.tenant

    @admin.display(description="addresses")
    def addresses_shown(self, server: DhcpServer) -> str:
        return ", ".join(a.address for a in server.addresses.all()) or ("the subnets' DHCP address"
                                                                       if server.rank == 0 else "—")


@admin.register(Membership)
class MembershipAdmin(ServiceBackedAdmin):
    list_display = ["user", "tenant", "role", "created_at"]
    list_filter = ["role", "tenant"]
    search_fields = ["user__username", "tenant__name"]
    autocomplete_fields = ["user"]
    fields = ["user", "tenant", "role"]

    def get_readonly_fields(self, request: HttpRequest, obj: Membership | None = None) -> list[str]:
        return ["user", "tenant"] if obj else []  # another user or tenant is another membership

    def call_service(self, request: HttpRequest, form: ModelForm, change: bool) -> Membership:
        current = Membership.objects.get(pk=form.instance.pk) if change else None
        return services.membership_set(tenant=current.tenant if current else form.cleaned_data["tenant"],
                                       user=current.user if current else form.cleaned_data["user"],
                                       role=form.cleaned_data["role"], actor=request.user)

    def delete_service(self, request: HttpRequest, obj: Membership) -> None:
        services.membership_remove(membership=obj, actor=request.user)


# --- routers and floating IPs (issue 14): through tenants.routers ---------------------------------------

class RouterInterfaceInline(ReadOnlyInline):
    model = RouterInterface
    fields = ["subnet", "kernel_id"]
    readonly_fields = fields


def _external_only(db_field: Any, field: Any) -> Any:
    """Gateways and floating IPs take only external networks: the choice offers nothing else."""
    if db_field.name in ("external_network", "network") and field is not None:
        field.queryset = Network.objects.filter(external=True)
    return field


@admin.register(Router)
class RouterAdmin(ServiceBackedAdmin):
    list_display = ["name", "tenant", "status", "node", "external_network", "external_ip", "kernel_id"]
    list_filter = ["status", "tenant", "node"]
    search_fields = ["name", "kernel_id", "tenant__name", "external_ip"]
    readonly_fields = ["kernel_id", "node", "status", "status_reason", "external_ip"]
    fields = ["tenant", "name", "external_network", *readonly_fields]
    inlines = [RouterInterfaceInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Router | None = None) -> list[str]:
        return [*self.readonly_fields, "tenant", "name"] if obj else self.readonly_fields

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        return _external_only(db_field, super().formfield_for_dbfield(db_field, request, **kwargs))

    def call_service(self, request: HttpRequest, form: ModelForm, change: bool) -> Router:
        external = form.cleaned_data.get("external_network")
        if not change:
            return routers.router_create(tenant=form.cleaned_data["tenant"], name=form.cleaned_data["name"],
                                         external_network=external, actor=request.user)
        router = Router.objects.get(pk=form.instance.pk)
        if external is None:
            return routers.router_clear_gateway(router=router, actor=request.user)
        return routers.router_set_gateway(router=router, external_network=external, actor=request.user)

    def delete_service(self, request: HttpRequest, obj: Router) -> None:
        routers.router_delete(router=obj, actor=request.user)


@admin.register(FloatingIP)
class FloatingIPAdmin(ServiceBackedAdmin):
    list_display = ["address", "tenant", "network", "instance"]
    list_filter = ["tenant", "network"]
    search_fields = ["address", "tenant__name", "instance__hostname"]
    fields = ["tenant", "network", "address", "instance"]

    def get_readonly_fields(self, request: HttpRequest, obj: FloatingIP | None = None) -> list[str]:
        return ["tenant", "network", "address"] if obj else ["address"]

    def formfield_for_dbfield(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        return _external_only(db_field, super().formfield_for_dbfield(db_field, request, **kwargs))

    def call_service(self, request: HttpRequest, form: ModelForm, change: bool) -> FloatingIP:
        if not change:
            fip = routers.floating_ip_allocate(tenant=form.cleaned_data["tenant"],
                                               external_network=form.cleaned_data["network"], actor=request.user)
            instance = form.cleaned_data.get("instance")
            return fip if instance is None else routers.floating_ip_associate(floating_ip=fip, instance=instance,
                                                                              actor=request.user)
        fip = FloatingIP.objects.get(pk=form.instance.pk)
        if form.cleaned_data.get("instance") is None:
            return routers.floating_ip_disassociate(floating_ip=fip, actor=request.user)
        return routers.floating_ip_associate(floating_ip=fip, instance=form.cleaned_data["instance"],
                                             actor=request.user)

    def delete_service(self, request: HttpRequest, obj: FloatingIP) -> None:
        routers.floating_ip_release(floating_ip=obj, actor=request.user)
