"""Portal pages against a real database: create/edit/delete paths and the service errors they show."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import reverse

from api.models import ApiToken
from tenants import services
from tenants.choices import ObjectStatus, Role
from tenants.models import AuditEntry, Instance, Membership, Network, Subnet
from tenants.status import network_set_status

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_for(client):
    def login(user) -> Client:
        client.force_login(user)
        return client

    return login


def field_errors(response, field: str) -> list[str]:
    form = response.context["form"]
    return list(form.errors.get(field, []))


# --- auth ----------------------------------------------------------------------------------------------

def test_anonymous_is_sent_to_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_sign_in_and_out(client, admin):
    page = client.get(reverse("login"))
    assert page.status_code == 200 and b"Sign in" in page.content
    response = client.post(reverse("login"), {"username": "acme-admin", "password": "pw-not-used-elsewhere-1"})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    assert client.get("/").status_code == 302


def test_forms_are_csrf_protected(admin, network):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(admin)
    response = csrf_client.post(reverse("portal:network-edit", args=[network.pk]), {"name": "renamed"})
    assert response.status_code == 403
    network.refresh_from_db()
    assert network.name == "lab"


# --- networks ------------------------------------------------------------------------------------------

def test_network_list_shows_status_counts_and_quota(client_for, admin, network):
    services.instance_create(network=network, hostname="vm1")
    html = client_for(admin).get("/").content.decode()
    assert f'data-network-id="{network.pk}"' in html
    assert 'data-status="pending"' in html
    assert "192.168.1.0/24" in html
    assert re.search(r'data-field="instance_count">1<', html)
    assert 'data-quota="networks"' in html


def test_create_network_with_first_subnet(client_for, admin, tenant):
    response = client_for(admin).post(reverse("portal:network-create"), {
        "name": "office", "cidr": "10.1.0.0/24", "gateway": "", "allocation_pools": "10.1.0.50-10.1.0.99",
        "dns_nameservers": "1.1.1.1, 9.9.9.9", "domain_name": "office.internal", "lease_seconds": 600,
        "enable_dhcp": "on",
    })
    network = Network.objects.get(tenant=tenant, name="office")
    assert response.status_code == 302 and response["Location"] == reverse("portal:network-detail", args=[network.pk])
    subnet = network.subnets.get()
    assert subnet.gateway == "10.1.0.1" and subnet.dns_nameservers == ["1.1.1.1", "9.9.9.9"]
    assert [(str(s), str(e)) for s, e in subnet.pools] == [("10.1.0.50", "10.1.0.99")]
    assert subnet.lease_seconds == 600 and subnet.enable_dhcp


def test_allocation_pools_have_one_name_on_forms_and_pages(client_for, admin, network):
    """The database's AllocationPool is "allocation pools" everywhere, with IPAM named as what draws on them: dnsmasq
    runs in static mode, so calling them "DHCP ranges" told the reader something false."""
    client = client_for(admin)
    urls = [reverse("portal:network-create"), reverse("portal:subnet-create", args=[network.pk]),
            network.get_absolute_url()]
    pages = [client.get(url) for url in urls]
    for response in pages:
        html = response.content.decode()
        assert response.status_code == 200 and "Allocation pools" in html and "DHCP range" not in html
    assert "IPAM" in pages[0].content.decode()


def test_create_network_shows_the_service_suggestion_on_the_cidr_field(client_for, admin, tenant):
    response = client_for(admin).post(reverse("portal:network-create"),
                                      {"name": "office", "cidr": "192.168.1.5/24", "lease_seconds": 3600})
    assert response.status_code == 200
    assert field_errors(response, "cidr") == ["192.168.1.5/24 is not a network address. Did you mean 192.168.1.0/24?"]
    assert "Did you mean 192.168.1.0/24?" in response.content.decode()
    assert not Network.objects.filter(tenant=tenant).exists()


def test_create_network_errors_on_name_pools_and_lease_time(client_for, admin, network):
    client = client_for(admin)
    response = client.post(reverse("portal:network-create"), {"name": "lab", "cidr": "10.2.0.0/24",
                                                              "lease_seconds": 3600})
    assert "already has a network named 'lab'" in field_errors(response, "name")[0]
    response = client.post(reverse("portal:network-create"), {
        "name": "other", "cidr": "10.2.0.0/24", "allocation_pools": "10.2.0.200-10.2.0.100", "lease_seconds": 3600,
    })
    assert any("reversed. Did you mean 10.2.0.100-10.2.0.200?" in m for m in field_errors(response, "allocation_pools"))
    response = client.post(reverse("portal:network-create"), {"name": "other", "cidr": "10.2.0.0/24",
                                                              "lease_seconds": 60})
    assert "outside 120s" in field_errors(response, "lease_seconds")[0]


def test_quota_error_is_a_non_field_error(client_for, tenant_factory, member_factory):
    small = tenant_factory(quota_networks=0)
    user = member_factory(small)
    response = client_for(user).post(reverse("portal:network-create"), {"name": "x", "cidr": "10.3.0.0/24",
                                                                        "lease_seconds": 3600})
    assert "Quota reached" in response.context["form"].non_field_errors()[0]


def test_network_detail_shows_subnets_instances_leases_and_events(client_for, admin, network):
    instance = services.instance_create(network=network, hostname="vm1", actor=admin)
    html = client_for(admin).get(reverse("portal:network-detail", args=[network.pk])).content.decode()
    assert f'data-network-id="{network.pk}"' in html and f'data-instance-id="{instance.pk}"' in html
    assert "192.168.1.0/24" in html and instance.mac_address in html
    assert "instance.create" in html and "network.create" in html


def test_portal_pages_carry_the_live_client(client_for, admin, tenant, network):
    """List, network and instance pages connect to their tenant's socket; the network page embeds lease panels."""
    import json

    from tenants.models import Lease

    instance = services.instance_create(network=network, hostname="vm1", actor=admin)
    subnet = network.subnets.get()
    client = client_for(admin)

    def config(html: str) -> dict:
        found = re.search(r'<script id="page-live-config" type="application/json">(.*?)</script>', html, re.S)
        assert found, "no live config on the page"
        return json.loads(found.group(1))

    html = client.get(reverse("portal:network-list")).content.decode()
    assert config(html)["ws_path"] == f"/ws/live/tenants/{tenant.pk}/" and "live/portal.js" in html
    html = client.get(reverse("portal:network-detail", args=[network.pk])).content.decode()
    assert config(html) | {"naming": None, "urls": None, "labels": None} == {
        "mode": "page", "ws_path": f"/ws/live/tenants/{tenant.pk}/", "tenant": tenant.pk, "network": network.pk,
        "instance": None, "naming": None, "urls": None, "labels": None}
    assert f'data-lease-panel="{subnet.pk}"' in html and f'href="/live/tenants/{tenant.pk}/"' in html
    assert re.search(rf'data-instance-id="{instance.pk}".*?data-field="lease"><span class="muted">none', html, re.S)
    Lease.objects.create(subnet=subnet, ip_address=instance.ip_address, mac_address=instance.mac_address)
    html = client.get(reverse("portal:network-detail", args=[network.pk])).content.decode()
    assert re.search(rf'data-instance-id="{instance.pk}".*?data-field="lease"><span class="badge lease-active">', html,
                     re.S)  # matched by MAC before the watcher links the lease to the instance
    html = client.get(reverse("portal:instance-detail", args=[instance.pk])).content.decode()
    assert config(html)["instance"] == instance.pk and config(html)["labels"]["status"]["active"] == "Active"


def test_network_status_reason_is_shown(client_for, admin, network):
    network_set_status(network_id=network.pk, status=ObjectStatus.ERROR, reason="dnsmasq exited: port busy")
    html = client_for(admin).get(reverse("portal:network-detail", args=[network.pk])).content.decode()
    assert "dnsmasq exited: port busy" in html and 'data-status="error"' in html


def test_rename_network(client_for, admin, network):
    client = client_for(admin)
    response = client.post(reverse("portal:network-edit", args=[network.pk]), {"name": "lab 2"})
    assert response.status_code == 302
    network.refresh_from_db()
    assert network.name == "lab 2"
    response = client.post(reverse("portal:network-edit", args=[network.pk]), {"name": "two\nlines"})
    assert "single line" in field_errors(response, "name")[0]


def test_delete_network_asks_first_then_marks_deleting(client_for, admin, network):
    client = client_for(admin)
    confirm = client.get(reverse("portal:network-delete", args=[network.pk]))
    assert confirm.status_code == 200 and b"Delete network lab" in confirm.content
    network.refresh_from_db()
    assert network.status == ObjectStatus.PENDING
    response = client.post(reverse("portal:network-delete", args=[network.pk]))
    assert response.status_code == 302
    network.refresh_from_db()
    assert network.status == ObjectStatus.DELETING


def test_queue_banner_when_queue_is_down(client_for, admin, network, monkeypatch):
    client = client_for(admin)
    html = client.get("/").content.decode()
    assert re.search(r"data-queue-banner hidden", html)
    monkeypatch.setattr("portal.pages.queue_available", lambda: False)
    html = client.get("/").content.decode()
    assert "The job queue is unavailable; changes are saved and will be applied when it is back" in html
    assert not re.search(r"data-queue-banner hidden", html)


# --- subnets -------------------------------------------------------------------------------------------

def test_subnet_create_edit_delete(client_for, admin, network):
    client = client_for(admin)
    response = client.post(reverse("portal:subnet-create", args=[network.pk]), {
        "cidr": "10.5.0.0/24", "gateway": "none", "lease_seconds": 3600, "enable_dhcp": "on",
    })
    assert response.status_code == 302
    subnet = Subnet.objects.get(network=network, cidr="10.5.0.0/24")
    assert subnet.gateway is None
    edit_url = reverse("portal:subnet-edit", args=[subnet.pk])
    assert "10.5.0.1" in client.get(edit_url).content.decode()  # current DHCP address shown
    response = client.post(edit_url, {"gateway": "10.5.0.254", "allocation_pools": "10.5.0.100-10.5.0.150",
                                      "dns_nameservers": "10.5.0.254", "domain_name": "LAB.internal",
                                      "lease_seconds": 900})
    assert response.status_code == 302
    subnet.refresh_from_db()
    assert subnet.gateway == "10.5.0.254" and subnet.domain_name == "lab.internal" and not subnet.enable_dhcp
    response = client.post(reverse("portal:subnet-delete", args=[subnet.pk]))
    assert response.status_code == 302 and not Subnet.objects.filter(pk=subnet.pk).exists()


def test_subnet_errors_are_inline(client_for, admin, network):
    client = client_for(admin)
    response = client.post(reverse("portal:subnet-create", args=[network.pk]),
                           {"cidr": "192.168.1.128/25", "lease_seconds": 3600})
    assert "overlaps 192.168.1.0/24" in field_errors(response, "cidr")[0]
    response = client.post(reverse("portal:subnet-create", args=[network.pk]),
                           {"cidr": "10.6.0.0/24", "gateway": "10.7.0.1", "dns_nameservers": "not-an-ip",
                            "lease_seconds": 3600})
    assert "not inside 10.6.0.0/24" in field_errors(response, "gateway")[0]
    subnet = network.subnets.get()
    response = client.post(reverse("portal:subnet-edit", args=[subnet.pk]),
                           {"gateway": "192.168.1.1", "allocation_pools": "192.168.1.1-192.168.1.20",
                            "lease_seconds": 3600})
    assert any("contains the gateway" in m for m in field_errors(response, "allocation_pools"))


def test_subnet_in_use_cannot_be_deleted(client_for, admin, network):
    services.instance_create(network=network, hostname="vm1")
    subnet = network.subnets.get()
    response = client_for(admin).post(reverse("portal:subnet-delete", args=[subnet.pk]), follow=True)
    assert "still has 1 instance(s)" in response.content.decode()
    assert Subnet.objects.filter(pk=subnet.pk).exists()


# --- instances -----------------------------------------------------------------------------------------

def test_instance_create_detail_edit_delete(client_for, admin, network, settings):
    client = client_for(admin)
    response = client.post(reverse("portal:instance-create", args=[network.pk]), {"hostname": "web-1"})
    instance = Instance.objects.get(network=network, hostname="web-1")
    assert response.status_code == 302 and response["Location"] == reverse("portal:instance-detail",
                                                                           args=[instance.pk])
    html = client.get(response["Location"]).content.decode()
    assert instance.mac_address in html and instance.ip_address in html
    assert f"{settings.NETDASH_PREFIX}inst-{instance.kernel_id}" in html
    response = client.post(reverse("portal:instance-edit", args=[instance.pk]), {"ip_address": "192.168.1.77"})
    assert response.status_code == 302
    instance.refresh_from_db()
    assert instance.ip_address == "192.168.1.77" and instance.fixed_ip
    response = client.post(reverse("portal:instance-delete", args=[instance.pk]))
    instance.refresh_from_db()
    assert response.status_code == 302 and instance.status == ObjectStatus.DELETING


def test_instance_errors_are_inline(client_for, admin, network):
    client = client_for(admin)
    response = client.post(reverse("portal:instance-create", args=[network.pk]), {"hostname": "Web_1"})
    assert "Did you mean 'web-1'?" in field_errors(response, "hostname")[0]
    response = client.post(reverse("portal:instance-create", args=[network.pk]),
                           {"hostname": "web-1", "ip_address": "192.168.1.1"})
    assert field_errors(response, "ip_address") == ["192.168.1.1 is the subnet's gateway; pick another address."]
    services.instance_create(network=network, hostname="db", ip_address="192.168.1.50")
    response = client.post(reverse("portal:instance-create", args=[network.pk]),
                           {"hostname": "web-1", "ip_address": "192.168.1.50"})
    assert "already reserved by instance 'db'" in field_errors(response, "ip_address")[0]


# --- tenant switcher, members, audit -------------------------------------------------------------------

def test_tenant_switcher(client_for, tenant_factory, member_factory, network_factory):
    one, two = tenant_factory(name="One", slug="one"), tenant_factory(name="Two", slug="two")
    user = member_factory(one)
    services.membership_set(tenant=two, user=user, role=Role.MEMBER)
    network_factory(tenant=one, name="net-of-one")
    network_factory(tenant=two, name="net-of-two")
    client = client_for(user)
    html = client.get("/").content.decode()
    assert "data-tenant-switcher" in html and "net-of-one" in html and "net-of-two" not in html
    assert client.post(reverse("portal:tenant-switch"), {"tenant": two.pk}).status_code == 302
    html = client.get("/").content.decode()
    assert "net-of-two" in html and "net-of-one" not in html
    stranger = tenant_factory(name="Stranger", slug="stranger")
    assert client.post(reverse("portal:tenant-switch"), {"tenant": stranger.pk}).status_code == 404
    assert client.post(reverse("portal:tenant-switch"), {"tenant": "not-a-number"}).status_code == 404


def test_no_switcher_for_a_single_tenant(client_for, admin, network):
    assert "data-tenant-switcher" not in client_for(admin).get("/").content.decode()


def test_user_without_tenant_sees_an_explanation(client_for, user_factory):
    client = client_for(user_factory())
    assert b"not a member of any tenant" in client.get("/").content
    assert client.get(reverse("portal:network-create")).status_code == 302


def test_members_page_add_change_remove(client_for, admin, tenant, user_factory):
    newcomer = user_factory(username="newcomer")
    client = client_for(admin)
    url = reverse("portal:member-list", args=[tenant.slug])
    assert client.post(url, {"username": "newcomer", "role": "member"}).status_code == 302
    membership = Membership.objects.get(tenant=tenant, user=newcomer)
    response = client.post(url, {"username": "nobody", "role": "member"})
    assert "no active user named 'nobody'" in field_errors(response, "username")[0]
    client.post(reverse("portal:member-role", args=[tenant.slug, membership.pk]), {"role": "admin"})
    membership.refresh_from_db()
    assert membership.role == Role.ADMIN
    assert client.get(reverse("portal:member-remove", args=[tenant.slug, membership.pk])).status_code == 200
    client.post(reverse("portal:member-remove", args=[tenant.slug, membership.pk]))
    assert not Membership.objects.filter(pk=membership.pk).exists()
    assert AuditEntry.objects.filter(tenant=tenant, action="member.remove").exists()


def test_plain_members_cannot_manage_members_or_read_audit(client_for, member_factory, tenant):
    member = member_factory(tenant, role="member")
    client = client_for(member)
    assert client.get(reverse("portal:member-list", args=[tenant.slug])).status_code == 404
    assert client.get(reverse("portal:audit-log", args=[tenant.slug])).status_code == 404
    assert client.post(reverse("portal:member-list", args=[tenant.slug]),
                       {"username": member.username, "role": "admin"}).status_code == 404
    assert Membership.objects.get(user=member).role == Role.MEMBER


def test_audit_log_page(client_for, admin, tenant, network):
    html = client_for(admin).get(reverse("portal:audit-log", args=[tenant.slug])).content.decode()
    assert "network.create" in html and "subnet.create" in html


def test_superuser_sees_every_tenant(client_for, user_factory, isolation_world):
    root = user_factory(is_superuser=True)
    client = client_for(root)
    html = client.get(reverse("portal:tenant-list")).content.decode()
    assert "Alpha Corp" in html and "Beta Secret Corp" in html
    assert client.get(reverse("portal:network-detail", args=[isolation_world.b_network.pk])).status_code == 200
    assert client.get(reverse("portal:audit-log", args=[isolation_world.b.slug])).status_code == 200


# --- API tokens ----------------------------------------------------------------------------------------

def test_token_create_shows_secret_once_and_revoke(client_for, admin):
    client = client_for(admin)
    response = client.post(reverse("portal:token-list"), {"name": "laptop"})
    secret = response.context["secret"]
    assert secret.startswith("nd_") and secret in response.content.decode()
    token = ApiToken.objects.get(user=admin)
    assert token.token_hash != secret and secret not in token.token_hash
    listing = client.get(reverse("portal:token-list")).content.decode()
    assert secret not in listing and token.prefix in listing
    assert client.post(reverse("portal:token-revoke", args=[token.pk])).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    response = client.post(reverse("portal:token-list"), {"name": ""})
    assert field_errors(response, "name")


def test_tokens_of_other_users_are_invisible(client_for, admin, user_factory):
    other = user_factory()
    from api import services as token_services

    token, _ = token_services.api_token_create(user=other, name="theirs")
    client = client_for(admin)
    assert token.prefix not in client.get(reverse("portal:token-list")).content.decode()
    assert client.post(reverse("portal:token-revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.mark.django_db
def test_network_and_instance_pages_show_the_equivalent_commands(client, member_factory, tenant_factory):
    """The teaching panel (commands derived from the driver's own plan) is on the portal's detail pages."""
    from tenants import services

    tenant = tenant_factory()
    user = member_factory(tenant=tenant)
    network = services.network_create(tenant=tenant, name="cmds", subnet={"cidr": "192.168.1.0/24"})
    instance = services.instance_create(network=network, hostname="vm1")
    client.force_login(user)
    page = client.get(f"/networks/{network.pk}/").content.decode()
    assert "Under the hood" in page and "ip netns add" in page and network.kernel_id in page
    page = client.get(f"/instances/{instance.pk}/").content.decode()
    assert "udhcpc" in page and instance.mac_address in page
