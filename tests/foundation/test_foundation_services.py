"""Services against a real database: overlap rules, address defaults, IPAM, fixed IPs, quotas, audit."""

import contextlib
import ipaddress
import re

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tenants import selectors, services
from tenants.choices import ObjectStatus
from tenants.models import AllocationPool, AuditEntry, Instance, Network, Subnet

pytestmark = pytest.mark.django_db

DB_PROPS = settings(max_examples=100, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

NASTY = ["\n", "\r", ",", "\x00", "\t", "\u2028", "\ud800", '"', "'", "é", "🙂", " ", "#", "-", "."]
nasty_text = st.lists(st.one_of(st.sampled_from(NASTY), st.characters(exclude_categories=()),
                                st.sampled_from("abcxyz0189-")), max_size=300).map("".join)


def errors_of(exc_info):
    """All messages of a ValidationError, keyed by field ('__all__' for non-field)."""
    exc = exc_info.value
    return exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}


def made_or_refused(service, **kwargs):
    """What ``service`` made, or None when it refused with a ValidationError that says why."""
    try:
        return service(**kwargs)
    except ValidationError as exc:
        assert exc.messages
        return None


@contextlib.contextmanager
def rolled_back():
    """Each hypothesis example starts from the same database."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def pools_of(subnet):
    pools = [(p.start, p.end) for p in AllocationPool.objects.filter(subnet=subnet)]
    return sorted(pools, key=lambda p: ipaddress.ip_address(p[0]))


# --- the headline: overlapping tenants ------------------------------------------------------------------

def test_two_tenants_may_both_use_192_168_1_0_24(tenant_factory):
    acme, globex = tenant_factory(name="Acme"), tenant_factory(name="Globex")
    a = services.network_create(tenant=acme, name="net", subnet={"cidr": "192.168.1.0/24"})
    b = services.network_create(tenant=globex, name="net", subnet={"cidr": "192.168.1.0/24"})
    assert a.subnets.get().cidr == b.subnets.get().cidr == "192.168.1.0/24"
    # Same addresses are handed out independently in each tenant.
    ia = services.instance_create(network=a, hostname="vm1")
    ib = services.instance_create(network=b, hostname="vm1")
    assert ia.ip_address == ib.ip_address == "192.168.1.3"


def test_overlap_within_one_network_is_rejected_with_its_message(network_factory):
    network = network_factory(name="office", cidr="192.168.1.0/24")
    for cidr in ("192.168.1.0/24", "192.168.1.128/25", "192.168.0.0/16"):
        with pytest.raises(ValidationError) as exc:
            services.subnet_create(network=network, cidr=cidr)
        [msg] = errors_of(exc)["cidr"]
        assert msg.startswith(f"{cidr} overlaps 192.168.1.0/24, already on network 'office'.")
        assert "another network may use the same range" in msg
    assert network.subnets.count() == 1
    # A disjoint subnet on the same network is fine.
    services.subnet_create(network=network, cidr="192.168.2.0/24")
    assert network.subnets.count() == 2


def test_another_network_of_the_same_tenant_may_reuse_a_cidr(tenant_factory):
    tenant = tenant_factory()
    services.network_create(tenant=tenant, name="one", subnet={"cidr": "10.0.0.0/24"})
    two = services.network_create(tenant=tenant, name="two", subnet={"cidr": "10.0.0.0/24"})
    assert two.subnets.get().cidr == "10.0.0.0/24"
    assert Subnet.objects.filter(network__tenant=tenant, cidr="10.0.0.0/24").count() == 2


# --- networks ---------------------------------------------------------------------------------------------

def test_network_create_audits_and_enqueues_after_commit(tenant_factory, user_factory, outbox,
                                                         django_capture_on_commit_callbacks):
    tenant, user = tenant_factory(), user_factory()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        network = services.network_create(tenant=tenant, name="lab", actor=user, subnet={"cidr": "10.1.0.0/16"})
        assert outbox == {"jobs": [], "events": []}  # nothing leaves before commit
    for callback in callbacks:
        callback()
    assert network.status == ObjectStatus.PENDING
    # One job for the network (the first subnet's job is folded into it), one event per object.
    assert outbox["jobs"] == [("tenants.jobs.realise_network", (network.pk,))]
    assert outbox["events"] == [(tenant.pk, "subnet.created"), (tenant.pk, "network.created")]
    entry = AuditEntry.objects.get(action="network.create")
    assert (entry.tenant, entry.actor, entry.object_id) == (tenant, user, str(network.pk))
    assert AuditEntry.objects.filter(action="subnet.create", detail="10.1.0.0/16").exists()


def test_network_name_unique_per_tenant(tenant_factory):
    a, b = tenant_factory(), tenant_factory()
    services.network_create(tenant=a, name="lab")
    services.network_create(tenant=b, name="lab")
    with pytest.raises(ValidationError) as exc:
        services.network_create(tenant=a, name="lab")
    assert errors_of(exc)["name"] == ["This tenant already has a network named 'lab'."]
    other = services.network_create(tenant=a, name="lab2")
    with pytest.raises(ValidationError, match="already has a network named 'lab'"):
        services.network_update(network=other, name="lab")
    assert services.network_update(network=other, name="lab3").name == "lab3"


def test_network_create_with_a_bad_subnet_saves_nothing(tenant_factory):
    tenant = tenant_factory()
    with pytest.raises(ValidationError, match="Did you mean 10.0.0.0/24"):
        services.network_create(tenant=tenant, name="lab", subnet={"cidr": "10.0.0.7/24"})
    assert not Network.objects.filter(tenant=tenant).exists()


def test_network_delete_marks_network_and_instances(network_factory):
    network = network_factory(cidr="10.0.0.0/24")
    instance = services.instance_create(network=network, hostname="vm1")
    services.network_delete(network=network)
    assert Network.objects.get(pk=network.pk).status == ObjectStatus.DELETING
    assert Instance.objects.get(pk=instance.pk).status == ObjectStatus.DELETING
    with pytest.raises(ValidationError, match="being deleted"):
        services.instance_create(network=Network.objects.get(pk=network.pk), hostname="vm2")
    assert services.network_rerealise(networks=[Network.objects.get(pk=network.pk)]) == 0


@DB_PROPS
@given(name=nasty_text)
def test_network_names_from_anywhere_give_a_network_or_a_validation_error(tenant_factory, name):
    tenant = tenant_factory()
    with rolled_back():
        network = made_or_refused(services.network_create, tenant=tenant, name=name)
        if network is not None:
            assert Network.objects.get(pk=network.pk).name == name
            assert "\n" not in name and "\x00" not in name


# --- subnets: defaults and errors -------------------------------------------------------------------------

def test_subnet_defaults_gateway_dhcp_and_pool(network_factory):
    subnet = network_factory(cidr="192.168.1.0/24").subnets.get()
    assert (subnet.gateway, subnet.dhcp_address) == ("192.168.1.1", "192.168.1.2")
    assert pools_of(subnet) == [("192.168.1.3", "192.168.1.254")]
    assert subnet.lease_seconds == 3600 and subnet.enable_dhcp


@pytest.mark.parametrize(("kwargs", "gateway", "dhcp", "pools"), [
    ({"gateway": None}, None, "192.168.1.1", [("192.168.1.2", "192.168.1.254")]),
    ({"gateway": "192.168.1.254"}, "192.168.1.254", "192.168.1.1", [("192.168.1.2", "192.168.1.253")]),
    ({"gateway": "192.168.1.100", "dhcp_address": "192.168.1.200"}, "192.168.1.100", "192.168.1.200",
     [("192.168.1.1", "192.168.1.99"), ("192.168.1.101", "192.168.1.199"), ("192.168.1.201", "192.168.1.254")]),
    ({"allocation_pools": "192.168.1.10-192.168.1.20\n192.168.1.30-192.168.1.40"}, "192.168.1.1", "192.168.1.2",
     [("192.168.1.10", "192.168.1.20"), ("192.168.1.30", "192.168.1.40")]),
    ({"allocation_pools": [{"start": "192.168.1.50", "end": "192.168.1.60"}]}, "192.168.1.1", "192.168.1.2",
     [("192.168.1.50", "192.168.1.60")]),
])
def test_subnet_explicit_addresses(network_factory, kwargs, gateway, dhcp, pools):
    subnet = services.subnet_create(network=network_factory(), cidr="192.168.1.0/24", **kwargs)
    assert (subnet.gateway, subnet.dhcp_address) == (gateway, dhcp)
    assert pools_of(subnet) == pools


def test_smallest_subnet_has_room(network_factory):
    subnet = services.subnet_create(network=network_factory(), cidr="10.9.9.8/29")
    assert (subnet.gateway, subnet.dhcp_address) == ("10.9.9.9", "10.9.9.10")
    assert pools_of(subnet) == [("10.9.9.11", "10.9.9.14")]


@pytest.mark.parametrize(("kwargs", "field", "expected"), [
    ({"cidr": "192.168.1.5/24"}, "cidr", "192.168.1.5/24 is not a network address. Did you mean 192.168.1.0/24?"),
    ({"cidr": "8.8.8.0/24"}, "cidr", "is not a private range"),
    ({"gateway": "192.168.2.1"}, "gateway", "The gateway 192.168.2.1 is not inside 192.168.1.0/24."),
    ({"gateway": "192.168.1.0"}, "gateway", "is the network address of 192.168.1.0/24"),
    ({"gateway": "192.168.1.255"}, "gateway", "is the broadcast address"),
    ({"gateway": "nope"}, "gateway", "'nope' is not a valid IP gateway."),
    ({"dhcp_address": "192.168.1.1"}, "dhcp_address", "The DHCP server address 192.168.1.1 is the gateway"),
    ({"dhcp_address": "10.0.0.1"}, "dhcp_address", "is not inside"),
    ({"allocation_pools": "192.168.1.1-192.168.1.50"}, "allocation_pools", "contains the gateway 192.168.1.1"),
    ({"allocation_pools": "192.168.1.2-192.168.1.50"}, "allocation_pools",
     "contains the DHCP server address 192.168.1.2"),
    ({"allocation_pools": "192.168.1.60-192.168.1.50"}, "allocation_pools", "Did you mean 192.168.1.50-192.168.1.60?"),
    ({"allocation_pools": "192.168.1.10-192.168.1.50;192.168.1.40-192.168.1.90"}, "allocation_pools", "overlap"),
    ({"allocation_pools": "192.168.1.10"}, "allocation_pools", "is not a range"),
    ({"allocation_pools": "192.168.1.10-fd00::1"}, "allocation_pools", "is not inside"),
    ({"dns_nameservers": ["1.1.1.1", "x"]}, "dns_nameservers", "'x' is not a valid IP DNS server."),
    ({"dns_nameservers": 5}, "dns_nameservers", "must be a list"),
    ({"domain_name": "bad_domain"}, "domain_name", "is not a valid domain name"),
    ({"domain_name": "ok.internal\nserver=1.1.1.1"}, "domain_name", "is not a valid domain name"),
    ({"lease_seconds": 5}, "lease_seconds", "outside 120s"),
    ({"name": "sub\nnet"}, "name", "single line"),
])
def test_subnet_create_errors_are_field_keyed_and_save_nothing(network_factory, kwargs, field, expected):
    network = network_factory()
    kwargs = {"cidr": "192.168.1.0/24", **kwargs}
    with pytest.raises(ValidationError) as exc:
        services.subnet_create(network=network, **kwargs)
    assert any(expected in m for m in errors_of(exc).get(field, [])), errors_of(exc)
    assert not Subnet.objects.filter(network=network).exists()
    assert not AuditEntry.objects.filter(action="subnet.create").exists()


@st.composite
def subnet_with_pools(draw):
    third = draw(st.integers(0, 255))
    net = ipaddress.ip_network(f"192.168.{third}.0/{draw(st.integers(24, 28))}")
    size = net.num_addresses
    offsets = st.integers(0, size - 1)
    pools = draw(st.lists(st.tuples(offsets, offsets), min_size=1, max_size=3))
    base = net.network_address
    return net, [(str(base + s), str(base + e)) for s, e in pools]


def pools_valid(net, pools, reserved):
    pools = [(ipaddress.ip_address(s), ipaddress.ip_address(e)) for s, e in pools]
    first, last = net.network_address + 1, net.broadcast_address - 1
    for start, end in pools:
        if not first <= start <= end <= last or any(start <= r <= end for r in reserved):
            return False
    return all(not (a[0] <= b[1] and b[0] <= a[1]) for i, a in enumerate(pools) for b in pools[i + 1:])


@DB_PROPS
@given(case=subnet_with_pools())
def test_random_pools_through_the_service(network_factory, case):
    net, pools = case
    network = network_factory()
    reserved = [net.network_address + 1, net.network_address + 2]
    with transaction.atomic():
        try:
            subnet = services.subnet_create(network=network, cidr=str(net), allocation_pools=pools)
        except ValidationError as exc:
            assert not pools_valid(net, pools, reserved), exc.messages
            assert list(exc.message_dict) == ["allocation_pools"]
        else:
            assert pools_valid(net, pools, reserved)
            assert pools_of(subnet) == sorted(pools, key=lambda p: ipaddress.ip_address(p[0]))
        transaction.set_rollback(True)


# --- subnet_update / subnet_delete ------------------------------------------------------------------------

def test_subnet_update_changes_dhcp_settings(network_factory, user_factory, django_capture_on_commit_callbacks):
    network = network_factory(cidr="192.168.1.0/24")
    subnet = selectors.subnets_for_user(user_factory(is_superuser=True)).get(network=network)
    assert subnet.pools == [(ipaddress.ip_address("192.168.1.3"), ipaddress.ip_address("192.168.1.254"))]
    with django_capture_on_commit_callbacks() as callbacks:
        services.subnet_update(subnet=subnet, allocation_pools="192.168.1.100-192.168.1.150",
                               dns_nameservers=["9.9.9.9"], domain_name="Lab.Internal", lease_seconds=600)
    assert len(callbacks) == 2  # realise job + event
    fresh = Subnet.objects.get(pk=subnet.pk)
    assert pools_of(fresh) == [("192.168.1.100", "192.168.1.150")]
    assert (fresh.dns_nameservers, fresh.domain_name, fresh.lease_seconds) == (["9.9.9.9"], "lab.internal", 600)
    # The object the caller holds (prefetched by the selector) must not report the old pools.
    assert subnet.pools == [(ipaddress.ip_address("192.168.1.100"), ipaddress.ip_address("192.168.1.150"))]
    assert AuditEntry.objects.filter(action="subnet.update", object_id=str(subnet.pk)).exists()


def test_subnet_update_pools_reset_to_default_and_gateway_moves(network_factory):
    subnet = network_factory(cidr="192.168.1.0/24").subnets.get()
    services.subnet_update(subnet=subnet, gateway="192.168.1.254", dhcp_address="192.168.1.253",
                           allocation_pools=None)
    subnet.refresh_from_db()
    assert (subnet.gateway, subnet.dhcp_address) == ("192.168.1.254", "192.168.1.253")
    assert pools_of(subnet) == [("192.168.1.1", "192.168.1.252")]


def test_subnet_update_refusals(network_factory):
    network = network_factory(cidr="192.168.1.0/24")
    subnet = network.subnets.get()
    services.instance_create(network=network, hostname="vm1")  # takes 192.168.1.3
    cases = [
        ({"cidr": "10.0.0.0/24"}, "cidr", "This field cannot be changed."),
        ({"gateway": "192.168.1.3", "allocation_pools": "192.168.1.10-192.168.1.20"}, "gateway",
         "192.168.1.3 is held by an instance; it cannot become the gateway."),
        ({"dhcp_address": "192.168.1.3", "allocation_pools": "192.168.1.10-192.168.1.20"}, "dhcp_address",
         "192.168.1.3 is held by an instance; it cannot become the DHCP server address."),
        ({"gateway": "192.168.1.50"}, "allocation_pools", "contains the gateway 192.168.1.50"),
        ({"lease_seconds": 10**9}, "lease_seconds", "outside 120s"),
    ]
    for changes, field, expected in cases:
        with pytest.raises(ValidationError) as exc:
            services.subnet_update(subnet=Subnet.objects.get(pk=subnet.pk), **changes)
        assert any(expected in m for m in errors_of(exc).get(field, [])), (changes, errors_of(exc))
    fresh = Subnet.objects.get(pk=subnet.pk)
    assert (fresh.gateway, fresh.dhcp_address, fresh.lease_seconds) == ("192.168.1.1", "192.168.1.2", 3600)
    assert pools_of(fresh) == [("192.168.1.3", "192.168.1.254")]


def test_subnet_delete_refused_while_instances_use_it(network_factory):
    network = network_factory(cidr="192.168.1.0/24")
    subnet = network.subnets.get()
    instance = services.instance_create(network=network, hostname="vm1")
    with pytest.raises(ValidationError) as exc:
        services.subnet_delete(subnet=subnet)
    assert errors_of(exc)["__all__"] == ["Subnet 192.168.1.0/24 still has 1 instance(s); delete them first."]
    assert Subnet.objects.filter(pk=subnet.pk).exists()
    Instance.objects.filter(pk=instance.pk).delete()  # what the agent does after teardown
    services.subnet_delete(subnet=subnet)
    assert not Subnet.objects.filter(pk=subnet.pk).exists()
    assert not AllocationPool.objects.filter(subnet_id=subnet.pk).exists()
    assert AuditEntry.objects.filter(action="subnet.delete", detail="192.168.1.0/24").exists()


# --- instances: IPAM, MACs, fixed IPs ---------------------------------------------------------------------

def test_ipam_allocates_lowest_free_address_and_a_local_mac(network_factory):
    network = network_factory(cidr="10.0.0.0/24", allocation_pools="10.0.0.10-10.0.0.11;10.0.0.20-10.0.0.20")
    ips, macs = [], set()
    for n in range(3):
        instance = services.instance_create(network=network, hostname=f"vm{n}")
        ips.append(instance.ip_address)
        macs.add(instance.mac_address)
        assert instance.mac_address.startswith("fa:16:3e:")
        assert not instance.fixed_ip
    assert ips == ["10.0.0.10", "10.0.0.11", "10.0.0.20"]
    assert len(macs) == 3
    with pytest.raises(ValidationError, match="has no free addresses left"):
        services.instance_create(network=network, hostname="vm9")
    # A freed address is reused.
    Instance.objects.filter(ip_address="10.0.0.11").delete()
    assert services.instance_create(network=network, hostname="vm9").ip_address == "10.0.0.11"


def test_instance_hostname_rules(network_factory):
    network = network_factory(cidr="10.0.0.0/24")
    services.instance_create(network=network, hostname="vm1")
    with pytest.raises(ValidationError) as exc:
        services.instance_create(network=network, hostname="vm1")
    assert errors_of(exc)["hostname"] == [f"'vm1' is already used in network '{network.name}'."]
    with pytest.raises(ValidationError, match="Did you mean 'my-vm'"):
        services.instance_create(network=network, hostname="My VM")


def test_instance_needs_a_subnet_of_its_own_network(network_factory):
    bare = network_factory()
    with pytest.raises(ValidationError, match="has no subnet yet"):
        services.instance_create(network=bare, hostname="vm1")
    other = network_factory(cidr="10.0.0.0/24").subnets.get()
    with pytest.raises(ValidationError, match="belongs to another network"):
        services.instance_create(network=bare, subnet=other, hostname="vm1")


@DB_PROPS
@given(hostname=nasty_text)
def test_instance_hostnames_from_anywhere_give_an_instance_or_a_validation_error(network_factory, hostname):
    network = network_factory(cidr="10.0.0.0/24")
    with rolled_back():
        instance = made_or_refused(services.instance_create, network=network, hostname=hostname)
        if instance is not None:
            assert Instance.objects.get(pk=instance.pk).hostname == hostname
            assert re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", hostname)


@pytest.mark.parametrize(("ip", "expected"), [
    ("10.0.1.5", "The fixed IP 10.0.1.5 is not inside 10.0.0.0/24."),
    ("10.0.0.0", "is the network address"),
    ("10.0.0.255", "is the broadcast address"),
    ("10.0.0.1", "10.0.0.1 is the subnet's gateway; pick another address."),
    ("10.0.0.2", "10.0.0.2 is the subnet's DHCP server address; pick another address."),
    ("10.0.0.50", "10.0.0.50 is already reserved by instance 'taken'."),
    ("10.0.0.x", "'10.0.0.x' is not a valid IP address."),
    ("fd00::5", "is not inside"),
])
def test_fixed_ip_rules(network_factory, ip, expected):
    network = network_factory(cidr="10.0.0.0/24")
    services.instance_create(network=network, hostname="taken", ip_address="10.0.0.50")
    with pytest.raises(ValidationError) as exc:
        services.instance_create(network=network, hostname="vm", ip_address=ip)
    assert expected in " ".join(errors_of(exc)["ip_address"])
    assert not Instance.objects.filter(hostname="vm").exists()


def test_fixed_ip_outside_pool_is_allowed_and_ipam_skips_fixed_ips(network_factory):
    network = network_factory(cidr="10.0.0.0/24", allocation_pools="10.0.0.10-10.0.0.20")
    fixed = services.instance_create(network=network, hostname="fixed", ip_address="10.0.0.200")
    assert (fixed.ip_address, fixed.fixed_ip) == ("10.0.0.200", True)
    in_pool = services.instance_create(network=network, hostname="inpool", ip_address="10.0.0.10")
    assert in_pool.fixed_ip
    assert services.instance_create(network=network, hostname="auto").ip_address == "10.0.0.11"


def test_instance_update_fixed_ip(network_factory):
    network = network_factory(cidr="10.0.0.0/24")
    a = services.instance_create(network=network, hostname="a")
    b = services.instance_create(network=network, hostname="b")
    services.instance_update(instance=a, ip_address="10.0.0.77")
    a.refresh_from_db()
    assert (a.ip_address, a.fixed_ip) == ("10.0.0.77", True)
    # Re-asserting its own address is fine; taking b's is not.
    services.instance_update(instance=a, ip_address="10.0.0.77")
    with pytest.raises(ValidationError, match="already reserved by instance 'a'"):
        services.instance_update(instance=Instance.objects.get(pk=b.pk), ip_address="10.0.0.77")
    with pytest.raises(ValidationError, match="is the subnet's gateway"):
        services.instance_update(instance=Instance.objects.get(pk=b.pk), ip_address="10.0.0.1")
    services.instance_update(instance=a, ip_address=None)
    a.refresh_from_db()
    assert (a.ip_address, a.fixed_ip) == ("10.0.0.77", False)
    assert AuditEntry.objects.filter(action="instance.update").count() == 3


def test_instance_delete_marks_for_the_agent(network_factory, django_capture_on_commit_callbacks):
    network = network_factory(cidr="10.0.0.0/24")
    instance = services.instance_create(network=network, hostname="vm1")
    with django_capture_on_commit_callbacks() as callbacks:
        services.instance_delete(instance=instance)
    assert Instance.objects.get(pk=instance.pk).status == ObjectStatus.DELETING
    assert len(callbacks) == 2


# --- quotas -----------------------------------------------------------------------------------------------

def test_network_quota(tenant_factory):
    tenant = tenant_factory(name="Small", quota_networks=2)
    services.network_create(tenant=tenant, name="a")
    services.network_create(tenant=tenant, name="b")
    with pytest.raises(ValidationError) as exc:
        services.network_create(tenant=tenant, name="c")
    assert errors_of(exc)["__all__"] == [
        "Quota reached: tenant 'Small' may have at most 2 networks (2 in use). "
        "Delete one or ask an administrator to raise the quota."
    ]
    assert Network.objects.filter(tenant=tenant).count() == 2
    services.network_create(tenant=tenant_factory(quota_networks=2), name="c")  # other tenants unaffected


def test_subnet_quota_counts_across_the_tenant(tenant_factory):
    tenant = tenant_factory(name="Small", quota_subnets=2)
    services.network_create(tenant=tenant, name="a", subnet={"cidr": "10.0.0.0/24"})
    b = services.network_create(tenant=tenant, name="b", subnet={"cidr": "10.0.1.0/24"})
    with pytest.raises(ValidationError, match=r"Quota reached: tenant 'Small' may have at most 2 subnets \(2 in use\)"):
        services.subnet_create(network=b, cidr="10.0.2.0/24")
    with pytest.raises(ValidationError, match="at most 2 subnets"):
        services.network_create(tenant=tenant, name="c", subnet={"cidr": "10.0.3.0/24"})
    assert not Network.objects.filter(tenant=tenant, name="c").exists()  # the network rolled back too


def test_instance_quota(tenant_factory):
    tenant = tenant_factory(name="Small", quota_instances=2)
    a = services.network_create(tenant=tenant, name="a", subnet={"cidr": "10.0.0.0/24"})
    b = services.network_create(tenant=tenant, name="b", subnet={"cidr": "10.0.0.0/24"})
    services.instance_create(network=a, hostname="vm1")
    services.instance_create(network=b, hostname="vm1")
    with pytest.raises(ValidationError, match=r"at most 2 instances \(2 in use\)"):
        services.instance_create(network=a, hostname="vm2")
    assert Instance.objects.filter(network__tenant=tenant).count() == 2


# --- tenants, members, selectors --------------------------------------------------------------------------

def test_tenant_create_validates(tenant_factory):
    with pytest.raises(ValidationError, match="Did you mean 'acme-corp'"):
        services.tenant_create(name="Acme", slug="Acme Corp")
    with pytest.raises(ValidationError):
        services.tenant_create(name="Acme\n", slug="acme")
    tenant_factory(name="Acme", slug="acme")
    with pytest.raises(ValidationError):
        services.tenant_create(name="Acme", slug="acme-2")


def test_membership_and_isolation(tenant_factory, user_factory, network_factory):
    acme, globex = tenant_factory(), tenant_factory()
    alice, root = user_factory(), user_factory(is_superuser=True)
    services.membership_set(tenant=acme, user=alice)
    assert not selectors.is_tenant_admin(alice, acme)
    services.membership_set(tenant=acme, user=alice, role="admin")
    assert selectors.is_tenant_admin(alice, acme) and not selectors.is_tenant_admin(alice, globex)
    with pytest.raises(ValidationError, match="Unknown role 'owner'"):
        services.membership_set(tenant=acme, user=alice, role="owner")
    mine = network_factory(tenant=acme, cidr="192.168.1.0/24")
    theirs = network_factory(tenant=globex, cidr="192.168.1.0/24")
    assert list(selectors.networks_for_user(alice)) == [mine]
    assert set(selectors.networks_for_user(root)) == {mine, theirs}
    assert selectors.quota_usage(acme)["subnets"] == {"used": 1, "limit": acme.quota_subnets}


def test_instance_create_on_a_subnet_deleted_meanwhile(network_factory):
    network = network_factory(cidr="10.0.0.0/24")
    stale = network.subnets.get()
    services.subnet_delete(subnet=Subnet.objects.get(pk=stale.pk))
    with pytest.raises(ValidationError) as exc:
        services.instance_create(network=network, subnet=stale, hostname="vm1")
    assert errors_of(exc) == {"subnet": ["The subnet was just deleted; pick another one."]}
    services.subnet_delete(subnet=stale)  # deleting twice is harmless


@settings(DB_PROPS, max_examples=50)
@given(name=nasty_text, slug=nasty_text, domain=nasty_text, subnet_name=nasty_text)
def test_tenant_and_subnet_text_fields_give_a_row_or_a_validation_error(network_factory, name, slug, domain,
                                                                        subnet_name):
    network = network_factory()
    with rolled_back():
        made_or_refused(services.tenant_create, name=name, slug=slug)
        subnet = made_or_refused(services.subnet_create, network=network, cidr="10.0.0.0/24", domain_name=domain,
                                 name=subnet_name)
        if subnet is not None:
            assert not re.search(r"[\x00-\x1f,\s]", subnet.domain_name)
            assert not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", subnet.name)
