"""Management commands: create_tenant, add_member, list_networks."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tenants import services
from tenants.choices import ObjectStatus, Role
from tenants.models import Membership, Tenant
from tenants.status import network_set_status

pytestmark = pytest.mark.django_db


def test_create_tenant(capsys):
    call_command("create_tenant", "acme", "--name", "Acme Corp", "--quota-networks", "3")
    tenant = Tenant.objects.get(slug="acme")
    assert tenant.name == "Acme Corp" and tenant.quota_networks == 3
    assert "created tenant acme" in capsys.readouterr().out


def test_create_tenant_reports_validation_errors():
    with pytest.raises(CommandError, match="Did you mean 'acme-corp'"):
        call_command("create_tenant", "Acme Corp")
    call_command("create_tenant", "acme")
    with pytest.raises(CommandError, match="slug"):
        call_command("create_tenant", "acme", "--name", "Other")


def test_add_member(user_factory, tenant_factory, capsys):
    tenant = tenant_factory(slug="acme")
    user = user_factory(username="alice")
    call_command("add_member", "acme", "alice")
    assert Membership.objects.get(tenant=tenant, user=user).role == Role.MEMBER
    call_command("add_member", "acme", "alice", "--role", "admin")
    assert Membership.objects.get(tenant=tenant, user=user).role == Role.ADMIN
    assert "alice is admin of acme" in capsys.readouterr().out
    with pytest.raises(CommandError, match="No tenant with slug 'nope'"):
        call_command("add_member", "nope", "alice")
    with pytest.raises(CommandError, match="No user 'ghost'"):
        call_command("add_member", "acme", "ghost")


def test_list_networks(tenant_factory, network_factory, capsys):
    acme, globex = tenant_factory(slug="acme"), tenant_factory(slug="globex")
    lab = network_factory(tenant=acme, name="lab", cidr="192.168.1.0/24")
    network_factory(tenant=globex, name="office", cidr="192.168.1.0/24")
    services.instance_create(network=lab, hostname="vm1")
    network_set_status(network_id=lab.pk, status=ObjectStatus.ERROR, reason="dnsmasq failed")
    call_command("list_networks")
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["ID", "TENANT", "NAME", "STATUS", "SUBNETS", "INSTANCES", "LEASES", "REASON"]
    assert out[1].split() == [str(lab.pk), "acme", "lab", "error", "192.168.1.0/24", "1", "0", "dnsmasq", "failed"]
    assert len(out) == 3
    call_command("list_networks", "--tenant", "globex")
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and "office" in out[1] and "pending" in out[1]
    with pytest.raises(CommandError):
        call_command("list_networks", "--tenant", "nope")
