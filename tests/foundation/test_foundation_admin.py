"""The admin: every page loads, and adds/changes/deletes go through the services (IPAM, audit, jobs)."""

import subprocess

import pytest
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.urls import reverse

from tenants import services
from tenants.choices import LeaseEventKind, ObjectStatus, Role
from tenants.models import AuditEntry, Instance, Lease, LeaseEvent, Membership, Network, Subnet, Tenant
from tenants.queue import queue_available
from tenants.testing import run_jobs

pytestmark = pytest.mark.django_db


@pytest.fixture
def populated(network_factory):
    """One of everything, so changelists render real rows (annotations, display methods, filters)."""
    network = network_factory(cidr="192.168.1.0/24", domain_name="lab.internal")
    subnet = network.subnets.get()
    instance = services.instance_create(network=network, hostname="vm1")
    lease = Lease.objects.create(subnet=subnet, instance=instance, ip_address=instance.ip_address,
                                 mac_address=instance.mac_address, hostname="vm1")
    LeaseEvent.objects.create(subnet=subnet, lease=lease, kind=LeaseEventKind.ADD, ip_address=lease.ip_address,
                              mac_address=lease.mac_address, hostname="vm1")
    return {"network": network, "subnet": subnet, "instance": instance, "lease": lease}


def url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def post_data(client, add_url, **fields):
    """Form fields plus the management form of every inline on the page, as the browser would send them."""
    page = client.get(add_url)
    assert page.status_code == 200
    data = {}
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data.update({f"{management.prefix}-{name}": value for name, value in management.initial.items()})
        for form in inline.formset.forms:  # existing rows of read-only inlines: just their ids
            data.update({form.add_prefix(name): form[name].value() for name in form.fields
                         if form[name].value() is not None})
    data.update(fields)
    return data


def test_every_changelist_and_add_page_loads(admin_client, populated, rf, admin_user):
    request = rf.get("/")
    request.user = admin_user
    assert len(admin.site._registry) >= 9
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label == "django_rq" and not queue_available():
            continue  # django-rq's own Redis dashboard: it needs Redis by definition (scripts/test.sh has one)
        assert admin_client.get(url(model, "changelist")).status_code == 200, model
        # Search and filters run their own queries: exercise them too.
        assert admin_client.get(url(model, "changelist"), {"q": "vm1"}).status_code == 200, model
        expected = 200 if model_admin.has_add_permission(request) else 403
        assert admin_client.get(url(model, "add")).status_code == expected, model
    for obj in (populated["network"], populated["subnet"], populated["instance"], populated["lease"]):
        assert admin_client.get(url(type(obj), "change", obj.pk)).status_code == 200, obj


def test_read_only_models_cannot_be_added(admin_client):
    for model in (Lease, LeaseEvent, AuditEntry):
        assert admin_client.get(url(model, "add")).status_code == 403


def test_add_network_through_admin_uses_the_service(admin_client, admin_user, tenant_factory, outbox,
                                                    django_capture_on_commit_callbacks):
    tenant = tenant_factory()
    data = post_data(admin_client, url(Network, "add"), tenant=tenant.pk, name="lab")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url(Network, "add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    network = Network.objects.get(tenant=tenant, name="lab")
    assert network.node  # scheduled by the service
    assert AuditEntry.objects.get(action="network.create").actor == admin_user
    # The trial run in form.clean() is rolled back: exactly one job and one event, for the real save.
    assert outbox["jobs"] == [("tenants.jobs.realise_network", (network.pk,))]
    assert outbox["events"] == [(tenant.pk, "network.created")]


def test_admin_network_errors_come_from_the_service(admin_client, tenant_factory):
    tenant = tenant_factory(quota_networks=1)
    services.network_create(tenant=tenant, name="lab")
    response = admin_client.post(url(Network, "add"), post_data(admin_client, url(Network, "add"),
                                                                 tenant=tenant.pk, name="lab"))
    assert response.status_code == 200
    assert "Quota reached" in response.content.decode()
    assert Network.objects.filter(tenant=tenant).count() == 1


def subnet_fields(network, **overrides):
    fields = {"network": network.pk, "name": "", "cidr": "192.168.1.0/24", "gateway": "", "dhcp_address": "",
              "dns_nameservers": "[]", "domain_name": "", "lease_seconds": "3600", "enable_dhcp": "on"}
    fields.update(overrides)
    return fields


def test_add_subnet_through_admin_fills_defaults(admin_client, admin_user, network_factory, outbox,
                                                 django_capture_on_commit_callbacks):
    network = network_factory()
    data = post_data(admin_client, url(Subnet, "add"), **subnet_fields(network, dns_nameservers='["9.9.9.9"]'))
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url(Subnet, "add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    subnet = Subnet.objects.get(network=network)
    assert (subnet.gateway, subnet.dhcp_address, subnet.dns_nameservers) == ("192.168.1.1", "192.168.1.2",
                                                                              ["9.9.9.9"])
    assert [(p.start, p.end) for p in subnet.allocation_pools.all()] == [("192.168.1.3", "192.168.1.254")]
    entry = AuditEntry.objects.get(action="subnet.create")
    assert (entry.actor, entry.object_id) == (admin_user, str(subnet.pk))
    assert outbox["jobs"] == [("tenants.jobs.realise_network", (network.pk,))]


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"cidr": "192.168.1.5/24"}, "192.168.1.5/24 is not a network address. Did you mean 192.168.1.0/24?"),
    ({"cidr": "192.0.2.0/24"}, "is not a private range"),
    ({"gateway": "192.168.2.1"}, "The gateway 192.168.2.1 is not inside 192.168.1.0/24."),
    ({"gateway": "192.168.1.1", "dhcp_address": "192.168.1.1"}, "is the gateway; pick another address."),
    ({"dns_nameservers": "5"}, "DNS servers must be a list"),
    ({"domain_name": "Bad_Domain"}, "is not a valid domain name"),
    ({"cidr": "2001:db8:a::/64", "ipv6_ra_mode": "slaac", "ipv6_address_mode": "dhcpv6-stateful"},
     "valid pairs are slaac/slaac, dhcpv6-stateless/dhcpv6-stateless, dhcpv6-stateful/dhcpv6-stateful"),
])
def test_bad_subnet_in_admin_shows_the_service_message_and_saves_nothing(admin_client, network_factory,
                                                                         overrides, expected):
    network = network_factory()
    data = post_data(admin_client, url(Subnet, "add"), **subnet_fields(network, **overrides))
    response = admin_client.post(url(Subnet, "add"), data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert any(expected in message for messages in errors.values() for message in messages), errors
    assert expected.replace("'", "&#x27;") in response.content.decode()
    assert not Subnet.objects.filter(network=network).exists()
    assert not AuditEntry.objects.filter(action="subnet.create").exists()


def test_add_ipv6_subnet_through_admin_with_its_modes(admin_client, network_factory):
    network = network_factory()
    fields = subnet_fields(network, cidr="2001:db8:a::/64", ipv6_ra_mode="dhcpv6-stateful",
                           ipv6_address_mode="dhcpv6-stateful")
    response = admin_client.post(url(Subnet, "add"), post_data(admin_client, url(Subnet, "add"), **fields))
    assert response.status_code == 302, response.context["adminform"].form.errors
    subnet = Subnet.objects.get(network=network)
    assert (subnet.ip_version, subnet.ipv6_ra_mode, subnet.ipv6_address_mode, subnet.dhcp_address) == (
        6, "dhcpv6-stateful", "dhcpv6-stateful", "2001:db8:a::2")
    assert "dhcpv6-stateful" in admin_client.get(url(Subnet, "change", subnet.pk)).content.decode()


def test_change_subnet_through_admin_uses_subnet_update(admin_client, network_factory):
    subnet = network_factory(cidr="192.168.1.0/24").subnets.get()
    change = url(Subnet, "change", subnet.pk)
    data = post_data(admin_client, change, name="office", gateway="192.168.1.1", dhcp_address="192.168.1.2",
                     dns_nameservers='["1.1.1.1"]', domain_name="office.internal", lease_seconds="600",
                     enable_dhcp="on")
    response = admin_client.post(change, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    subnet.refresh_from_db()
    assert (subnet.name, subnet.lease_seconds, subnet.domain_name) == ("office", 600, "office.internal")
    assert AuditEntry.objects.filter(action="subnet.update", object_id=str(subnet.pk)).exists()


def test_add_instance_through_admin_allocates_ip_and_mac(admin_client, admin_user, network_factory, outbox,
                                                         django_capture_on_commit_callbacks):
    network = network_factory(cidr="10.0.0.0/24")
    subnet = network.subnets.get()
    data = post_data(admin_client, url(Instance, "add"), network=network.pk, subnet=subnet.pk, hostname="web1",
                     ip_address="")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url(Instance, "add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    instance = Instance.objects.get(network=network, hostname="web1")
    assert instance.ip_address == "10.0.0.3" and not instance.fixed_ip
    assert instance.mac_address.startswith("fa:16:3e:")
    assert AuditEntry.objects.get(action="instance.create").actor == admin_user
    assert outbox["jobs"] == [("tenants.jobs.realise_instance", (instance.pk,))]


def test_admin_instance_fixed_ip_errors(admin_client, network_factory):
    network = network_factory(cidr="10.0.0.0/24")
    data = post_data(admin_client, url(Instance, "add"), network=network.pk, subnet=network.subnets.get().pk,
                     hostname="web1", ip_address="10.0.0.1")
    response = admin_client.post(url(Instance, "add"), data)
    assert response.status_code == 200
    assert "10.0.0.1 is the subnet&#x27;s gateway" in response.content.decode()
    assert not Instance.objects.exists()


def test_change_and_delete_instance_through_admin(admin_client, network_factory):
    network = network_factory(cidr="10.0.0.0/24")
    instance = services.instance_create(network=network, hostname="web1")
    change = url(Instance, "change", instance.pk)
    response = admin_client.post(change, post_data(admin_client, change, ip_address="10.0.0.99"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    instance.refresh_from_db()
    assert (instance.ip_address, instance.fixed_ip) == ("10.0.0.99", True)
    response = admin_client.post(url(Instance, "delete", instance.pk), {"post": "yes"})
    assert response.status_code == 302
    assert Instance.objects.get(pk=instance.pk).status == ObjectStatus.DELETING  # the agent removes the row


def test_rerealise_action(admin_client, admin_user, network_factory, outbox, django_capture_on_commit_callbacks):
    a, b = network_factory(), network_factory()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url(Network, "changelist"),
                                     {"action": "rerealise", "_selected_action": [a.pk, b.pk]}, follow=True)
    assert response.status_code == 200
    assert "Queued 2 network(s) for realisation." in response.content.decode()
    # force=True: after manual tinkering the whole plan is walked, not only the files of a network that looks up
    assert sorted(outbox["jobs"]) == sorted([("tenants.jobs.realise_network", (a.pk, True)),
                                             ("tenants.jobs.realise_network", (b.pk, True))])
    assert AuditEntry.objects.filter(action="network.rerealise", actor=admin_user).count() == 2


def test_bulk_delete_goes_through_the_services(admin_client, network_factory, outbox,
                                               django_capture_on_commit_callbacks):
    network = network_factory(cidr="10.0.0.0/24")
    subnet = services.subnet_create(network=network, cidr="10.0.1.0/24")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url(Subnet, "changelist"), {
            "action": "delete_selected", "_selected_action": [subnet.pk], "post": "yes"})
    assert response.status_code == 302
    assert not Subnet.objects.filter(pk=subnet.pk).exists()
    # Deleted via subnet_delete: audited, and the network's dnsmasq is told to stop serving it.
    assert AuditEntry.objects.filter(action="subnet.delete", detail="10.0.1.0/24").exists()
    assert ("tenants.jobs.realise_network", (network.pk,)) in outbox["jobs"]
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(url(Network, "changelist"), {
            "action": "delete_selected", "_selected_action": [network.pk], "post": "yes"})
    assert Network.objects.get(pk=network.pk).status == ObjectStatus.DELETING
    assert ("tenants.jobs.destroy_network_batch", ([network.pk],)) in outbox["jobs"]


# --- tenants and members: through the services (last-admin rule, audit, teardown through jobs) ------------

def tenant_fields(tenant, **overrides):
    fields = {"name": tenant.name, "slug": tenant.slug, "quota_networks": tenant.quota_networks,
              "quota_subnets": tenant.quota_subnets, "quota_instances": tenant.quota_instances,
              "quota_routers": tenant.quota_routers, "quota_floating_ips": tenant.quota_floating_ips}
    fields.update(overrides)
    return fields


def test_add_and_change_tenant_through_admin_are_audited(admin_client, admin_user, user_factory):
    boss = user_factory()
    add = url(Tenant, "add")
    response = admin_client.post(add, post_data(admin_client, add, name="Initech", slug="initech",
                                                quota_networks="3", quota_subnets="4", quota_instances="5",
                                                quota_routers="1", quota_floating_ips="2",
                                                **{"memberships-TOTAL_FORMS": "1", "memberships-0-user": boss.pk,
                                                   "memberships-0-role": "admin"}))
    assert response.status_code == 302, response.context["adminform"].form.errors
    tenant = Tenant.objects.get(slug="initech")
    assert AuditEntry.objects.get(action="tenant.create", tenant=tenant).actor == admin_user
    # Its first member came in through membership_set, in the same save.
    assert Membership.objects.get(tenant=tenant, user=boss).role == Role.ADMIN
    assert AuditEntry.objects.get(action="member.set", tenant=tenant).detail == f"{boss} as admin"
    change = url(Tenant, "change", tenant.pk)
    response = admin_client.post(change, post_data(admin_client, change, **tenant_fields(tenant, quota_networks="7")))
    assert response.status_code == 302, response.context["adminform"].form.errors
    tenant.refresh_from_db()
    assert tenant.quota_networks == 7
    assert AuditEntry.objects.filter(action="tenant.update", tenant=tenant, actor=admin_user).exists()
    # The service's own rules reach the form: a taken slug is a form error, not a 500.
    other = Tenant.objects.create(name="Other", slug="other")
    other_change = url(Tenant, "change", other.pk)
    response = admin_client.post(other_change, post_data(admin_client, other_change,
                                                         **tenant_fields(other, slug="initech")))
    assert response.status_code == 200 and "slug" in response.context["adminform"].form.errors


def test_the_admin_keeps_a_tenants_last_admin(admin_client, admin_user, tenant_factory, member_factory):
    tenant = tenant_factory()
    boss = member_factory(tenant, role=Role.ADMIN)
    clerk = member_factory(tenant, role=Role.MEMBER)
    rows = {m.user_id: i for i, m in enumerate(tenant.memberships.order_by("pk"))}
    change = url(Tenant, "change", tenant.pk)
    # Demote the only admin on the tenant page: refused with the service's message, nothing saved.
    data = post_data(admin_client, change, **tenant_fields(tenant), **{f"memberships-{rows[boss.pk]}-role": "member"})
    response = admin_client.post(change, data)
    assert response.status_code == 200
    assert "is the last admin of" in response.content.decode()
    assert Membership.objects.get(user=boss).role == Role.ADMIN
    # Remove the only admin from the membership admin: refused, and said why.
    boss_row = Membership.objects.get(user=boss)
    response = admin_client.post(url(Membership, "delete", boss_row.pk), {"post": "yes"}, follow=True)
    assert "is the last admin of" in response.content.decode()
    assert Membership.objects.filter(pk=boss_row.pk).exists()
    # Promote the clerk and demote the boss in one save: the rule judges the final set of admins.
    data = post_data(admin_client, change, **tenant_fields(tenant), **{
        f"memberships-{rows[boss.pk]}-role": "member", f"memberships-{rows[clerk.pk]}-role": "admin"})
    response = admin_client.post(change, data)
    assert response.status_code == 302
    assert dict(tenant.memberships.values_list("user_id", "role")) == {boss.pk: "member", clerk.pk: "admin"}
    assert set(AuditEntry.objects.filter(action="member.set", actor=admin_user).values_list("detail", flat=True)) \
        == {f"{boss} as member", f"{clerk} as admin"}
    # Removing the (now plain) member through the membership admin goes through membership_remove: audited.
    response = admin_client.post(url(Membership, "delete", boss_row.pk), {"post": "yes"})
    assert response.status_code == 302 and not Membership.objects.filter(pk=boss_row.pk).exists()
    assert AuditEntry.objects.filter(action="member.remove", actor=admin_user, detail=str(boss)).exists()


def test_add_member_through_the_membership_admin_uses_the_service(admin_client, admin_user, tenant_factory,
                                                                 user_factory):
    tenant, user = tenant_factory(), user_factory()
    add = url(Membership, "add")
    response = admin_client.post(add, post_data(admin_client, add, user=user.pk, tenant=tenant.pk, role="admin"))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert Membership.objects.get(user=user, tenant=tenant).role == Role.ADMIN
    assert AuditEntry.objects.get(action="member.set", tenant=tenant).actor == admin_user


def test_deleting_a_tenant_without_networks_removes_it_at_once(admin_client, admin_user, tenant_factory):
    a, b = tenant_factory(), tenant_factory()
    response = admin_client.post(url(Tenant, "changelist"), {
        "action": "delete_selected", "_selected_action": [a.pk, b.pk], "post": "yes"})
    assert response.status_code == 302
    assert not Tenant.objects.filter(pk__in=[a.pk, b.pk]).exists()
    # The tenant's own audit rows go with it; the deletion's entry stays (tenant=None).
    assert set(AuditEntry.objects.filter(action="tenant.delete", actor=admin_user).values_list("detail", flat=True)) \
        == {f"{a.name} ({a.slug})", f"{b.name} ({b.slug})"}


def _netns_list() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout


@pytest.mark.host
@pytest.mark.django_db(transaction=True)
def test_deleting_a_tenant_in_the_admin_tears_its_namespaces_down_through_the_agent(
        admin_client, host_clean, agent_queue):
    d = host_clean
    tenant = Tenant.objects.create(name="Doomed", slug="doomed")
    keep = Tenant.objects.create(name="Kept", slug="kept")
    networks = [services.network_create(tenant=tenant, name=f"net{i}", subnet={"cidr": f"10.{i}.0.0/24"})
                for i in range(2)]
    instance = services.instance_create(network=networks[0], hostname="vm1")
    kept = services.network_create(tenant=keep, name="net", subnet={"cidr": "10.0.0.0/24"})
    run_jobs()
    doomed = [d.names.seg_ns(n.kernel_id) for n in networks] + [d.names.dhcp_ns(n.kernel_id) for n in networks] \
        + [d.names.inst_ns(instance.kernel_id)]
    listed = _netns_list()
    assert all(name in listed for name in doomed), listed

    response = admin_client.post(url(Tenant, "delete", tenant.pk), {"post": "yes"})
    assert response.status_code == 302
    tenant.refresh_from_db()  # still there: its networks are being torn down
    assert tenant.deleting
    assert set(Network.objects.filter(tenant=tenant).values_list("status", flat=True)) == {ObjectStatus.DELETING}
    # No new network slips into a tenant being deleted.
    with pytest.raises(ValidationError, match="being deleted"):
        services.network_create(tenant=tenant, name="late")

    run_jobs()  # the agent's worker: destroy_network for each, then the tenant row goes
    assert not Tenant.objects.filter(pk=tenant.pk).exists()
    listed = _netns_list()
    assert not any(name in listed for name in doomed), listed
    assert d.names.dhcp_ns(kept.kernel_id) in listed  # another tenant's network is untouched
    assert Network.objects.filter(pk=kept.pk).exists()
