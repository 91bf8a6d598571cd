"""REST API v1: create/read/update/delete through services, filters, paging and readable errors."""

from __future__ import annotations

import pytest

from tenants import services
from tenants.choices import ObjectStatus
from tenants.models import Instance, Lease, Network, Subnet
from tenants.status import network_set_status

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant(tenant_factory):
    return tenant_factory(name="Acme", slug="acme")


@pytest.fixture
def user(member_factory, tenant):
    return member_factory(tenant, username="acme-user")


@pytest.fixture
def api(bearer_client, user):
    return bearer_client(user)


@pytest.fixture
def network(network_factory, tenant):
    return network_factory(tenant=tenant, name="lab", cidr="192.168.1.0/24")


# --- networks ------------------------------------------------------------------------------------------

def test_create_network_with_nested_subnet(api, tenant):
    response = api.post("/api/v1/networks/", {"name": "office", "subnet": {
        "cidr": "10.1.0.0/24", "allocation_pools": [{"start": "10.1.0.10", "end": "10.1.0.20"}],
        "dns_nameservers": ["1.1.1.1"], "domain_name": "office.internal", "lease_seconds": 600}}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "office" and body["tenant"] == tenant.pk and body["status"] == ObjectStatus.PENDING
    assert [s["cidr"] for s in body["subnets"]] == ["10.1.0.0/24"]
    subnet = Subnet.objects.get(network_id=body["id"])
    assert subnet.gateway == "10.1.0.1" and subnet.lease_seconds == 600
    assert [(str(a), str(b)) for a, b in subnet.pools] == [("10.1.0.10", "10.1.0.20")]


def test_create_network_without_subnet(api):
    response = api.post("/api/v1/networks/", {"name": "bare"}, format="json")
    assert response.status_code == 201 and response.json()["subnets"] == []


def test_nested_subnet_errors_are_reported_under_subnet(api):
    response = api.post("/api/v1/networks/", {"name": "office", "subnet": {"cidr": "192.168.1.5/24"}},
                        format="json")
    assert response.status_code == 400
    assert response.json() == {"subnet": {"cidr": ["192.168.1.5/24 is not a network address. "
                                                   "Did you mean 192.168.1.0/24?"]}}
    assert not Network.objects.filter(name="office").exists()


def test_network_name_errors(api, network):
    response = api.post("/api/v1/networks/", {"name": "lab"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"name": ["This tenant already has a network named 'lab'."]}
    assert api.post("/api/v1/networks/", {}, format="json").json() == {"name": ["This field is required."]}


def test_tenant_is_required_only_for_members_of_several(api, user, tenant_factory):
    other = tenant_factory(name="Second", slug="second")
    services.membership_set(tenant=other, user=user)
    response = api.post("/api/v1/networks/", {"name": "x"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"tenant": ["You belong to several tenants; say which one (id or slug)."]}
    by_slug = api.post("/api/v1/networks/", {"name": "x", "tenant": "second"}, format="json")
    assert by_slug.status_code == 201 and by_slug.json()["tenant"] == other.pk
    by_id = api.post("/api/v1/networks/", {"name": "y", "tenant": other.pk}, format="json")
    assert by_id.status_code == 201 and by_id.json()["tenant_slug"] == "second"


def test_tenant_of_someone_else_is_rejected_without_revealing_it(api, tenant_factory):
    foreign = tenant_factory(name="Foreign", slug="foreign")
    for ref in ("foreign", foreign.pk, "no-such-tenant"):
        response = api.post("/api/v1/networks/", {"name": "x", "tenant": ref}, format="json")
        assert response.status_code == 400
        assert response.json()["tenant"] == [f"You are not a member of a tenant {str(ref)!r}; give its id or slug."]
    assert not Network.objects.filter(tenant=foreign).exists()


def test_quota_error_is_non_field(bearer_client, member_factory, tenant_factory):
    small = tenant_factory(quota_networks=0)
    api = bearer_client(member_factory(small))
    response = api.post("/api/v1/networks/", {"name": "x"}, format="json")
    assert response.status_code == 400
    assert response.json()["non_field_errors"][0].startswith("Quota reached")


def test_rename_and_delete_network(api, network):
    url = f"/api/v1/networks/{network.pk}/"
    response = api.patch(url, {"name": "renamed"}, format="json")
    assert response.status_code == 200 and response.json()["name"] == "renamed"
    assert api.put(url, {"name": "again"}, format="json").json()["name"] == "again"
    response = api.delete(url)
    assert response.status_code == 202 and response.json()["status"] == ObjectStatus.DELETING
    network.refresh_from_db()
    assert network.status == ObjectStatus.DELETING


def test_list_networks_with_counts_filters_and_paging(api, network, network_factory, tenant):
    services.instance_create(network=network, hostname="vm1")
    for i in range(3):
        network_factory(tenant=tenant, name=f"extra-{i}")
    network_set_status(network_id=network.pk, status=ObjectStatus.ACTIVE)
    body = api.get("/api/v1/networks/?limit=2").json()
    assert body["count"] == 4 and len(body["results"]) == 2 and "offset=2" in body["next"]
    active = api.get("/api/v1/networks/?status=active").json()["results"]
    assert [n["name"] for n in active] == ["lab"] and active[0]["instance_count"] == 1
    assert api.get("/api/v1/networks/?tenant=acme").json()["count"] == 4
    assert api.get(f"/api/v1/networks/?tenant={tenant.pk}").json()["count"] == 4
    bad = api.get("/api/v1/networks/?status=sleeping")
    assert bad.status_code == 400 and "Unknown status 'sleeping'" in bad.json()["status"][0]


# --- subnets -------------------------------------------------------------------------------------------

def test_subnet_with_host_bits_gets_a_suggestion(api, network):
    response = api.post("/api/v1/subnets/", {"network": network.pk, "cidr": "192.168.1.5/24"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"cidr": ["192.168.1.5/24 is not a network address. Did you mean 192.168.1.0/24?"]}


def test_subnet_create_update_delete(api, network):
    response = api.post("/api/v1/subnets/", {"network": network.pk, "cidr": "10.9.0.0/24", "gateway": None},
                        format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["gateway"] is None and body["dhcp_address"] == "10.9.0.1"
    url = f"/api/v1/subnets/{body['id']}/"
    response = api.patch(url, {"gateway": "10.9.0.254", "domain_name": "lab.internal",
                               "allocation_pools": [{"start": "10.9.0.100", "end": "10.9.0.110"}]}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["allocation_pools"] == [{"start": "10.9.0.100", "end": "10.9.0.110"}]
    assert response.json()["gateway"] == "10.9.0.254"
    response = api.patch(url, {"cidr": "10.10.0.0/24"}, format="json")
    assert response.status_code == 400 and "cannot change" in response.json()["cidr"][0]
    response = api.patch(url, {"allocation_pools": [{"start": "10.9.0.110", "end": "10.9.0.100"}]}, format="json")
    assert response.status_code == 400
    assert response.json()["allocation_pools"] == ["Range 10.9.0.110-10.9.0.100 is reversed. "
                                                   "Did you mean 10.9.0.100-10.9.0.110?"]
    assert api.delete(url).status_code == 204
    assert not Subnet.objects.filter(pk=body["id"]).exists()


def test_subnet_overlap_and_in_use(api, network):
    response = api.post("/api/v1/subnets/", {"network": network.pk, "cidr": "192.168.0.0/16"}, format="json")
    assert response.status_code == 400 and "overlaps 192.168.1.0/24" in response.json()["cidr"][0]
    services.instance_create(network=network, hostname="vm1")
    subnet = network.subnets.get()
    response = api.delete(f"/api/v1/subnets/{subnet.pk}/")
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Subnet 192.168.1.0/24 still has 1 instance(s); "
                                                    "delete them first."]}


def test_subnet_filters(api, network, network_factory, tenant):
    other = network_factory(tenant=tenant, name="other", cidr="10.20.0.0/24")
    results = api.get(f"/api/v1/subnets/?network={other.pk}").json()["results"]
    assert [s["cidr"] for s in results] == ["10.20.0.0/24"]
    bad = api.get("/api/v1/subnets/?network=abc")
    assert bad.status_code == 400 and bad.json() == {"network": ["'abc' is not an id; give a number."]}


# --- instances and leases ------------------------------------------------------------------------------

def test_instance_create_update_delete(api, network, settings):
    response = api.post("/api/v1/instances/", {"network": network.pk, "hostname": "web-1"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["ip_address"] == "192.168.1.3" and body["mac_address"].startswith(settings.NETDASH_MAC_BASE)
    assert body["namespace"].endswith(f"inst-{body['kernel_id']}")
    url = f"/api/v1/instances/{body['id']}/"
    response = api.patch(url, {"ip_address": "192.168.1.99"}, format="json")
    assert response.status_code == 200 and response.json()["ip_address"] == "192.168.1.99"
    assert response.json()["fixed_ip"] is True
    response = api.delete(url)
    assert response.status_code == 202 and response.json()["status"] == ObjectStatus.DELETING


def test_instance_errors(api, network):
    response = api.post("/api/v1/instances/", {"network": network.pk, "hostname": "Web_1"}, format="json")
    assert response.status_code == 400 and "Did you mean 'web-1'?" in response.json()["hostname"][0]
    response = api.post("/api/v1/instances/", {"network": network.pk, "hostname": "web-1",
                                               "ip_address": "10.0.0.5"}, format="json")
    assert response.json() == {"ip_address": ["The fixed IP 10.0.0.5 is not inside 192.168.1.0/24."]}
    response = api.post("/api/v1/instances/", {"network": 999999, "hostname": "web-1"}, format="json")
    assert response.status_code == 400 and "does not exist" in response.json()["network"][0]


def test_instance_and_lease_filters(api, network, network_factory, tenant):
    other = network_factory(tenant=tenant, name="other", cidr="10.20.0.0/24")
    vm = services.instance_create(network=network, hostname="vm1")
    services.instance_create(network=other, hostname="vm2")
    Lease.objects.create(subnet=vm.subnet, instance=vm, ip_address=vm.ip_address, mac_address=vm.mac_address)
    assert [i["hostname"] for i in api.get(f"/api/v1/instances/?network={network.pk}").json()["results"]] == ["vm1"]
    assert api.get(f"/api/v1/instances/?subnet={other.subnets.get().pk}").json()["count"] == 1
    assert api.get("/api/v1/instances/?status=pending").json()["count"] == 2
    leases = api.get(f"/api/v1/leases/?network={network.pk}&status=active").json()["results"]
    assert [(lease["ip_address"], lease["instance"]) for lease in leases] == [(vm.ip_address, vm.pk)]
    assert api.get(f"/api/v1/leases/?network={other.pk}").json()["count"] == 0
    assert api.get("/api/v1/leases/?status=expired").json()["count"] == 0


@pytest.mark.parametrize(("resource", "param"), [
    ("subnets", "network"), ("instances", "network"), ("instances", "subnet"), ("leases", "network"),
    ("leases", "subnet"), ("leases", "instance"),
])
@pytest.mark.parametrize("value", ["abc", "99999999999999999999", "\u0663", "-1", "1.0", "%", "5%s"])
def test_a_bad_id_in_a_filter_is_a_400_that_says_so(api, network, resource, param, value):
    """Beyond the database's integer range overflowed into a 500; a non-ASCII digit passes str.isdigit(); a '%'
    broke django-filter's message formatting (a 500 found by schemathesis)."""
    response = api.get(f"/api/v1/{resource}/", {param: value})
    assert response.status_code == 400
    assert response.json() == {param: [f"{value!r} is not an id; give a number."]}


@pytest.mark.parametrize(("resource", "param", "valid"), [
    ("networks", "status", "pending, active, error, deleting"), ("instances", "status", "pending, active, error, "
                                                                   "deleting"),
    ("leases", "status", "active, released, expired"), ("leases", "state", "active, released, expired"),
])
def test_an_unknown_status_is_a_400_listing_the_valid_ones(api, resource, param, valid):
    response = api.get(f"/api/v1/{resource}/", {param: "building"})
    assert response.status_code == 400
    assert response.json() == {param: [f"Unknown {param} 'building'; choose one of {valid}."]}


def test_tenant_filter_takes_an_id_or_a_slug_and_big_numbers_are_slugs(api, network, tenant):
    for value in (tenant.pk, tenant.slug):
        assert api.get("/api/v1/instances/", {"tenant": value}).status_code == 200
        assert api.get("/api/v1/subnets/", {"tenant": value}).json()["count"] == 1
    assert api.get("/api/v1/subnets/", {"tenant": "99999999999999999999"}).json()["count"] == 0


def test_leases_are_read_only(api, network):
    assert api.post("/api/v1/leases/", {}, format="json").status_code == 405


# --- tenants -------------------------------------------------------------------------------------------

def test_tenants_lists_only_the_callers_with_role_and_quota(api, tenant, tenant_factory, network):
    tenant_factory(name="Other", slug="other")
    body = api.get("/api/v1/tenants/").json()
    assert [t["slug"] for t in body["results"]] == ["acme"]
    assert body["results"][0]["role"] == "member"
    assert body["results"][0]["quota"]["networks"] == {"used": 1, "limit": tenant.quota_networks}
    assert api.post("/api/v1/tenants/", {"name": "x", "slug": "x"}, format="json").status_code == 405


def test_instance_count_is_consistent(api, network):
    for i in range(3):
        services.instance_create(network=network, hostname=f"vm{i}")
    assert Instance.objects.count() == 3
    assert api.get(f"/api/v1/networks/{network.pk}/").json()["instance_count"] == 3
