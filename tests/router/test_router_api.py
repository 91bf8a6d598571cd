"""The router, floating IP and external network endpoints: round trips through the services, messages that say
the fix, tenant isolation (another tenant's router or floating IP is a 404, filters naming it give nothing), and
the OpenAPI document."""

import pytest
from openapi_spec_validator import validate
from rest_framework.test import APIClient

from tenants import routers, services
from tenants.models import FloatingIP, Router

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(tenant_factory, member_factory, external_factory, outbox):
    """Tenants a and b, each with a member, a network 192.168.1.0/24 with one instance, and an external network."""
    external = external_factory()
    made = {"external": external}
    for key in ("a", "b"):
        tenant = tenant_factory(slug=f"t{key}")
        user = member_factory(tenant)
        network = services.network_create(tenant=tenant, name="net", subnet={"cidr": "192.168.1.0/24"})
        instance = services.instance_create(network=network, hostname="vm1")
        client = APIClient()
        client.force_authenticate(user)
        made[key] = {"tenant": tenant, "user": user, "network": network, "subnet": network.subnets.get(),
                     "instance": instance, "client": client}
    return made


def test_router_round_trip_through_the_api(world):
    a, external = world["a"], world["external"]
    client = a["client"]
    made = client.post("/api/v1/routers/", {"name": "r1", "external_network": external.pk}, format="json")
    assert made.status_code == 201, made.json()
    body = made.json()
    assert body["external_ip"] == "203.0.113.3" and body["status"] == "pending" and body["namespace"]
    rid = body["id"]
    added = client.post(f"/api/v1/routers/{rid}/add-interface/", {"subnet": a["subnet"].pk}, format="json")
    assert added.status_code == 200, added.json()
    assert added.json()["interfaces"][0]["ip_address"] == "192.168.1.1"
    again = client.post(f"/api/v1/routers/{rid}/add-interface/", {"subnet": a["subnet"].pk}, format="json")
    assert again.status_code == 400 and "already attached to router 'r1'" in again.json()["subnet"][0]

    fip = client.post("/api/v1/floating-ips/", {"external_network": external.pk}, format="json")
    assert fip.status_code == 201, fip.json()
    fid = fip.json()["id"]
    assoc = client.patch(f"/api/v1/floating-ips/{fid}/", {"instance": a["instance"].pk}, format="json")
    assert assoc.status_code == 200, assoc.json()
    assert assoc.json()["router"] == rid and assoc.json()["instance"] == a["instance"].pk

    cleared = client.put(f"/api/v1/routers/{rid}/", {"external_network": None}, format="json")
    assert cleared.status_code == 400 and "disassociate them first" in str(cleared.json())
    gone = client.delete(f"/api/v1/routers/{rid}/")
    assert gone.status_code == 202 and gone.json()["status"] == "deleting"
    assert FloatingIP.objects.get(pk=fid).instance is None
    assert client.delete(f"/api/v1/floating-ips/{fid}/").status_code == 204


def test_external_networks_are_visible_to_every_tenant_but_not_as_their_networks(world):
    external = world["external"]
    for key in ("a", "b"):
        client = world[key]["client"]
        listed = client.get("/api/v1/external-networks/").json()["results"]
        assert [n["id"] for n in listed] == [external.pk]
        assert client.get(f"/api/v1/external-networks/{external.pk}/").status_code == 200
        # Not a network of theirs: no subnets or instances can be put on it through the API.
        assert client.get(f"/api/v1/networks/{external.pk}/").status_code == 404
        refused = client.post("/api/v1/instances/", {"network": external.pk, "hostname": "x"}, format="json")
        assert refused.status_code == 400 and "network" in refused.json()


def test_a_tenant_network_is_not_an_external_network_in_the_api(world):
    a, b = world["a"], world["b"]
    response = a["client"].post("/api/v1/routers/", {"name": "r", "external_network": a["network"].pk},
                                format="json")
    assert response.status_code == 400 and "external_network" in response.json()
    assert b["client"].get(f"/api/v1/external-networks/{a['network'].pk}/").status_code == 404


def test_another_tenants_router_and_floating_ip_are_404_and_filters_give_nothing(world):
    a, b, external = world["a"], world["b"], world["external"]
    router = routers.router_create(tenant=a["tenant"], name="r", external_network=external)
    routers.router_interface_add(router=router, subnet=a["subnet"])
    fip = routers.floating_ip_allocate(tenant=a["tenant"], external_network=external)
    routers.floating_ip_associate(floating_ip=fip, instance=a["instance"])
    other = b["client"]
    for method, url, body in (
        ("get", f"/api/v1/routers/{router.pk}/", None),
        ("put", f"/api/v1/routers/{router.pk}/", {"external_network": None}),
        ("delete", f"/api/v1/routers/{router.pk}/", None),
        ("post", f"/api/v1/routers/{router.pk}/add-interface/", {"subnet": b["subnet"].pk}),
        ("post", f"/api/v1/routers/{router.pk}/remove-interface/", {"subnet": a["subnet"].pk}),
        ("get", f"/api/v1/floating-ips/{fip.pk}/", None),
        ("patch", f"/api/v1/floating-ips/{fip.pk}/", {"instance": None}),
        ("delete", f"/api/v1/floating-ips/{fip.pk}/", None),
    ):
        response = getattr(other, method)(url, body, format="json")
        assert response.status_code == 404, (method, url, response.status_code)
    assert Router.objects.get(pk=router.pk).status != "deleting"
    assert FloatingIP.objects.get(pk=fip.pk).instance_id == a["instance"].pk
    for url in (f"/api/v1/routers/?tenant={a['tenant'].pk}", f"/api/v1/routers/?tenant={a['tenant'].slug}",
                f"/api/v1/floating-ips/?instance={a['instance'].pk}", f"/api/v1/floating-ips/?tenant={a['tenant'].pk}",
                f"/api/v1/routers/?external_network={external.pk}", f"/api/v1/floating-ips/?network={external.pk}"):
        assert other.get(url).json()["count"] == 0, url
        assert a["client"].get(url).json()["count"] == 1, url
    # b's own router cannot take a's subnet, nor b's floating IP a's instance: they "do not exist" for b.
    own = routers.router_create(tenant=b["tenant"], name="rb", external_network=external)
    response = other.post(f"/api/v1/routers/{own.pk}/add-interface/", {"subnet": a["subnet"].pk}, format="json")
    assert response.status_code == 400 and "does not exist" in response.json()["subnet"][0]
    own_fip = routers.floating_ip_allocate(tenant=b["tenant"], external_network=external)
    response = other.patch(f"/api/v1/floating-ips/{own_fip.pk}/", {"instance": a["instance"].pk}, format="json")
    assert response.status_code == 400 and "does not exist" in response.json()["instance"][0]


def test_quota_usage_shows_routers_and_floating_ips(world):
    a = world["a"]
    routers.router_create(tenant=a["tenant"], name="r")
    quota = a["client"].get(f"/api/v1/tenants/{a['tenant'].pk}/").json()["quota"]
    assert quota["routers"] == {"used": 1, "limit": a["tenant"].quota_routers}
    assert quota["floating_ips"] == {"used": 0, "limit": a["tenant"].quota_floating_ips}


def test_openapi_document_has_the_router_routes(client):
    document = client.get("/api/v1/openapi.json").json()
    validate(document)
    paths = document["paths"]
    assert set(paths["/api/v1/routers/"]) >= {"get", "post"}
    assert set(paths["/api/v1/routers/{router_id}/"]) >= {"get", "put", "patch", "delete"}
    assert set(paths["/api/v1/routers/{router_id}/add-interface/"]) == {"post"}
    assert set(paths["/api/v1/floating-ips/{floating_ip_id}/"]) >= {"get", "put", "patch", "delete"}
    assert set(paths["/api/v1/external-networks/{external_network_id}/"]) == {"get"}
    filters = {p["name"] for p in paths["/api/v1/floating-ips/"]["get"]["parameters"]}
    assert filters >= {"tenant", "network", "instance"}


def test_the_router_event_lists_the_subnet_just_attached_through_the_api(world, monkeypatch,
                                                                        django_capture_on_commit_callbacks):
    """The API reads the router with its interfaces prefetched; the event must not carry that stale list."""
    a, external = world["a"], world["external"]
    client = a["client"]
    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr("tenants.events.send_now", lambda tenant_id, event_type, data: sent.append((event_type, data)))
    rid = client.post("/api/v1/routers/", {"name": "r1", "external_network": external.pk}, format="json").json()["id"]
    with django_capture_on_commit_callbacks(execute=True):
        added = client.post(f"/api/v1/routers/{rid}/add-interface/", {"subnet": a["subnet"].pk}, format="json")
    assert added.status_code == 200, added.json()
    updates = [data for kind, data in sent if kind == "router.updated"]
    assert updates and updates[-1]["subnets"] == [a["subnet"].pk], sent
