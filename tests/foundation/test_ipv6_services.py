"""IPv6 subnets and dual-stack instances through the services: Neutron's mode matrix, SLAAC predictions, DHCPv6
IPAM, and the host specs the agent gets from them."""

import ipaddress

import pytest
from django.core.exceptions import ValidationError

from tenants import hostspecs, services, validators
from tenants.models import Instance

pytestmark = pytest.mark.django_db

MODES = validators.IPV6_MODES
V6 = "2001:db8:70::/64"


def v6_subnet(network, mode="slaac", ra_mode=None, cidr=V6, **kw):
    return services.subnet_create(network=network, cidr=cidr, ipv6_ra_mode=mode if ra_mode is None else ra_mode,
                                  ipv6_address_mode=mode, **kw)


@pytest.mark.parametrize("mode", MODES)
def test_valid_pairs_and_address_mode_alone_are_accepted(network_factory, mode):
    for ra_mode, cidr in ((mode, V6), ("", "2001:db8:71::/64")):
        subnet = v6_subnet(network_factory(), mode, ra_mode=ra_mode, cidr=cidr)
        assert (subnet.ip_version, subnet.ipv6_ra_mode, subnet.ipv6_address_mode) == (6, ra_mode, mode)
        assert subnet.gateway == str(subnet.ip_network[1]) and subnet.dhcp_address == str(subnet.ip_network[2])


@pytest.mark.parametrize("ra_mode,address_mode", [(a, b) for a in MODES for b in MODES if a != b])
def test_mixed_pairs_are_refused_naming_the_valid_pairs(network_factory, ra_mode, address_mode):
    with pytest.raises(ValidationError) as exc:
        v6_subnet(network_factory(), address_mode, ra_mode=ra_mode)
    [message] = exc.value.message_dict["ipv6_address_mode"]
    assert f"RA mode {ra_mode} with address mode {address_mode} is not a valid pair" in message
    assert "slaac/slaac, dhcpv6-stateless/dhcpv6-stateless, dhcpv6-stateful/dhcpv6-stateful" in message


@pytest.mark.parametrize("kwargs,field,expected", [
    ({"ipv6_address_mode": ""}, "ipv6_address_mode", "Choose an IPv6 address mode"),
    ({"ipv6_address_mode": "slaac", "ipv6_ra_mode": ""}, None, None),  # the only valid row of this table
    ({"ipv6_address_mode": "dhcp"}, "ipv6_address_mode", "'dhcp' is not an IPv6 address mode"),
    ({"ipv6_address_mode": "slaac", "cidr": "2001:db8:70::/80"}, "ipv6_address_mode", "slaac needs a /64"),
    ({"ipv6_address_mode": "dhcpv6-stateless", "cidr": "2001:db8:70::/96"}, "ipv6_address_mode",
     "dhcpv6-stateless needs a /64"),
    ({"ipv6_address_mode": "slaac", "cidr": "2001:db8::/56"}, "cidr", "outside /64–/120"),
    ({"ipv6_address_mode": "slaac", "dns_nameservers": ["192.168.1.53"]}, "dns_nameservers",
     "not an IPv6 address"),
    ({"ipv6_address_mode": "slaac", "gateway": "2001:db8:71::1"}, "gateway", "is not inside"),
])
def test_ipv6_subnet_errors_say_what_to_do(network_factory, kwargs, field, expected):
    args = {"cidr": V6, **kwargs}
    if field is None:
        assert services.subnet_create(network=network_factory(), **args).ipv6_address_mode == "slaac"
        return
    with pytest.raises(ValidationError) as exc:
        services.subnet_create(network=network_factory(), **args)
    assert any(expected in m for m in exc.value.message_dict[field]), exc.value.message_dict


def test_ipv4_keeps_its_rules_and_refuses_ipv6_modes(network_factory):
    with pytest.raises(ValidationError) as exc:
        services.subnet_create(network=network_factory(), cidr="10.9.0.0/24", ipv6_address_mode="slaac")
    assert "IPv6 RA and address modes apply to IPv6 only" in exc.value.message_dict["ipv6_address_mode"][0]
    with pytest.raises(ValidationError) as exc:
        services.subnet_create(network=network_factory(), cidr="10.9.0.0/24", dns_nameservers=["2001:db8::53"])
    assert "DHCP hands out IPv4 DNS servers only" in exc.value.message_dict["dns_nameservers"][0]


def test_dual_stack_slaac_instance_gets_both_and_the_eui64_prediction(network_factory):
    net = network_factory(cidr="192.168.1.0/24")
    v6 = v6_subnet(net, "slaac", dns_nameservers=["2001:db8:70::53"])
    inst = services.instance_create(network=net, hostname="vm1")
    assert inst.subnet.ip_version == 4 and inst.ip_address == "192.168.1.3"
    assert inst.ipv6_subnet == v6
    assert inst.ipv6_address == str(validators.eui64_address(v6.ip_network, inst.mac_address))
    mac = bytes.fromhex(inst.mac_address.replace(":", ""))  # the RFC 4291 example shape, spelled out
    iid = ipaddress.ip_address(inst.ipv6_address).packed[8:]
    assert iid == bytes([mac[0] ^ 2]) + mac[1:3] + b"\xff\xfe" + mac[3:]
    spec = hostspecs.network_spec(net)
    # SLAAC addresses are not dnsmasq's: the reservation carries the IPv4 address only.
    [r] = spec.reservations
    assert (str(r.ip), r.ip6) == ("192.168.1.3", None)
    [s6] = [s for s in spec.subnets if s.cidr.version == 6]
    assert (s6.ipv6_ra_mode, s6.ipv6_address_mode) == ("slaac", "slaac")


def test_slaac_subnet_refuses_a_fixed_ip(network_factory):
    net = network_factory()
    v6 = v6_subnet(net, "slaac")
    with pytest.raises(ValidationError) as exc:
        services.instance_create(network=net, hostname="vm1", subnet=v6, ip_address="2001:db8:70::10")
    assert "take their address from their MAC by SLAAC" in exc.value.message_dict["ip_address"][0]


def test_stateful_dual_stack_allocates_from_ipam_and_reserves_both(network_factory):
    net = network_factory(cidr="192.168.1.0/24")
    v6_subnet(net, "dhcpv6-stateful", cidr="2001:db8:72::/64")
    a = services.instance_create(network=net, hostname="a")
    b = services.instance_create(network=net, hostname="b")
    assert (a.ipv6_address, b.ipv6_address) == ("2001:db8:72::3", "2001:db8:72::4")
    reservations = {r.mac: (str(r.ip), str(r.ip6)) for r in hostspecs.network_spec(net).reservations}
    assert reservations == {a.mac_address: ("192.168.1.3", "2001:db8:72::3"),
                            b.mac_address: ("192.168.1.4", "2001:db8:72::4")}


def test_ipv6_only_stateful_instance_and_fixed_ip_change(network_factory):
    net = network_factory()
    v6 = v6_subnet(net, "dhcpv6-stateful", cidr="2001:db8:73::/64")
    inst = services.instance_create(network=net, hostname="a")
    assert (inst.subnet, inst.ip_address, inst.ipv6_subnet) == (v6, "2001:db8:73::3", None)
    services.instance_update(instance=inst, ip_address="2001:db8:73::99")
    [r] = hostspecs.network_spec(net).reservations
    assert (str(r.ip), r.ip6) == ("2001:db8:73::99", None)
    other = services.instance_create(network=net, hostname="b")
    assert other.ip_address == "2001:db8:73::3"  # IPAM reuses the freed address


def test_two_tenants_may_use_the_same_ipv6_prefix(network_factory):
    a, b = network_factory(), network_factory()
    assert v6_subnet(a).cidr == v6_subnet(b).cidr == V6


def test_ipv6_address_unique_per_subnet_is_a_database_constraint(network_factory):
    from django.db import IntegrityError, transaction
    net = network_factory(cidr="192.168.1.0/24")
    v6_subnet(net, "dhcpv6-stateful", cidr="2001:db8:74::/64")
    a = services.instance_create(network=net, hostname="a")
    b = services.instance_create(network=net, hostname="b")
    with pytest.raises(IntegrityError), transaction.atomic():
        Instance.objects.filter(pk=b.pk).update(ipv6_address=a.ipv6_address)


def test_dhcpv6_lease_lines_become_lease_rows_of_the_v6_subnet(network_factory):
    """The lease watcher's parse of dnsmasq's v6 lines, synced: a Lease on the v6 subnet, linked to the instance
    by the MAC inside its DUID, next to the instance's v4 lease; a line gone from the file releases it."""
    from tenants import lease_sync
    from tenants.host import parse_leases
    from tenants.models import Lease

    net = network_factory(cidr="192.168.1.0/24")
    v6 = v6_subnet(net, "dhcpv6-stateful", cidr="2001:db8:75::/64")
    inst = services.instance_create(network=net, hostname="vm")
    duid = "00:01:00:01:2c:11:22:33:" + inst.mac_address
    v4_line = f"1900000000 {inst.mac_address} 192.168.1.3 vm *\n"
    v6_lines = f"duid 00:01:00:01:aa:bb:cc:dd:02:00:00:00:00:01\n1900000000 11 {inst.ipv6_address} vm {duid}\n"
    lease_sync.sync_network_leases(net, parse_leases(v4_line + v6_lines))
    rows = {(lease.subnet_id, lease.ip_address, lease.instance_id, lease.state) for lease in Lease.objects.all()}
    assert rows == {(inst.subnet_id, "192.168.1.3", inst.pk, "active"), (v6.pk, "2001:db8:75::3", inst.pk, "active")}
    changes = lease_sync.sync_network_leases(net, parse_leases(v4_line))
    assert [(c.kind, c.ip) for c in changes] == [("release", "2001:db8:75::3")]


def test_a_v6_subnet_dual_stack_instances_use_cannot_be_deleted(network_factory):
    net = network_factory(cidr="192.168.1.0/24")
    v6 = v6_subnet(net)
    services.instance_create(network=net, hostname="vm")
    with pytest.raises(ValidationError) as exc:
        services.subnet_delete(subnet=v6)
    assert "still has 1 instance(s); delete them first" in exc.value.messages[0]
