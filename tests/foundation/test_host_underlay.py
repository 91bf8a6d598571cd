"""The real-host underlay of a deployment (issue 13: "make that a setting … and never use it in tests").

Everything here is planning and settings, never the kernel: what the agent *would* create with
``NETDASH_UNDERLAY=host`` (a VXLAN device made on the host's interface, no fabric, no underlay namespace), that bad
device names are refused before they reach a command line, and that the setting is refused wherever tests, CI or
the demo run (so nothing here or anywhere in the suite can put a VTEP socket on this machine's interfaces).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tenants import hostspecs, nodes
from tenants.host import HostConfig, LinuxHostDriver
from tenants.host.errors import HostInputError
from tenants.host.kinds import overlay
from tenants.host.ops import VxlanAdd
from tenants.host.specs import TunnelSpec, UnderlaySpec

BASE_DIR = Path(__file__).resolve().parents[2]
NAMES = LinuxHostDriver(HostConfig(prefix="tz-", state_dir=Path("/nonexistent"))).names


def test_a_host_underlay_plans_the_vxlan_on_the_hosts_interface_and_creates_nothing_else():
    underlay = UnderlaySpec("1", "198.51.100.1", 24, "", "", host_device="eth1")
    assert overlay.plan_underlay(NAMES, underlay) == []  # no namespace, veth or address on the host
    tunnel = TunnelSpec("00aa", 5, "1", "198.51.100.1", ("198.51.100.2",), host_device="eth1")
    add, flood = overlay.plan_tunnel(NAMES, tunnel)
    assert isinstance(add, VxlanAdd) and (add.ul_ns, add.ul_dev) == (None, "eth1")
    assert add.shell().startswith(f"ip link add {NAMES.vxlan('00aa')} netns {NAMES.seg_ns('00aa')} type vxlan id 5 "
                                  "local 198.51.100.1 dev eth1 dstport 4789")
    assert flood.ns == NAMES.seg_ns("00aa")
    # The simulated underlay (tests, demo, bench) makes it from the node's own underlay namespace instead.
    simulated = overlay.plan_tunnel(NAMES, TunnelSpec("00aa", 5, "1", "198.51.100.1", ("198.51.100.2",)))[0]
    assert simulated.ul_ns == NAMES.underlay_ns("1") and simulated.shell().startswith("ip -n ")


@pytest.mark.parametrize("device", ["eth1; reboot", "-eth1", "a/b", "e" * 16, "", "eth 1"])
def test_bad_device_names_are_refused_before_any_command_line(device):
    with pytest.raises(HostInputError, match="underlay device"):
        TunnelSpec("00aa", 5, "1", "198.51.100.1", host_device=device)
    with pytest.raises(HostInputError, match="underlay device"):
        UnderlaySpec("1", "198.51.100.1", 24, "", "", host_device=device)


@pytest.mark.django_db
def test_with_the_setting_the_nodes_specs_name_the_hosts_interface(settings, network_factory):
    settings.NETDASH_UNDERLAY, settings.NETDASH_UNDERLAY_DEVICE = "host", "eth1"
    settings.NETDASH_NODE_VTEP = "198.51.100.1"
    nodes.node_register(name=settings.NETDASH_NODE, vtep_address="198.51.100.1")
    nodes.node_register(name="other", vtep_address="198.51.100.2")
    network = network_factory(cidr="10.9.0.0/24")
    assert hostspecs.underlay_spec().host_device == "eth1"
    tunnel = hostspecs.tunnel_spec(network)
    assert tunnel is not None and tunnel.host_device == "eth1" and str(tunnel.local_vtep) == "198.51.100.1"
    settings.NETDASH_UNDERLAY_DEVICE = "eth1;x"
    with pytest.raises(HostInputError, match="NETDASH_UNDERLAY_DEVICE"):
        hostspecs.check_underlay()  # the agent's start-up check


def _settings_in_a_fresh_process(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", "NETDASH_DEMO", "NETDASH_UNDERLAY")}
    code = "import django; django.setup(); from django.conf import settings; print(settings.NETDASH_UNDERLAY_DEVICE)"
    return subprocess.run([sys.executable, "-c", code], cwd=BASE_DIR, env=clean | env, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("guard", [{"CI": "1"}, {"NETDASH_DEMO": "1"}])
def test_ci_and_the_demo_refuse_the_host_underlay(guard):
    out = _settings_in_a_fresh_process(NETDASH_UNDERLAY="host", NETDASH_UNDERLAY_DEVICE="eth1",
                                       NETDASH_NODE_VTEP="198.51.100.1", **guard)
    assert out.returncode != 0 and "for deployments only" in out.stderr


def test_a_deployment_gets_a_clear_error_without_device_or_vtep_and_the_setting_otherwise():
    missing = _settings_in_a_fresh_process(NETDASH_UNDERLAY="host", NETDASH_NODE_VTEP="198.51.100.1")
    assert missing.returncode != 0 and "needs NETDASH_UNDERLAY_DEVICE" in missing.stderr
    wrong = _settings_in_a_fresh_process(NETDASH_UNDERLAY="hots")
    assert wrong.returncode != 0 and "must be 'simulated' or 'host'" in wrong.stderr
    ok = _settings_in_a_fresh_process(NETDASH_UNDERLAY="host", NETDASH_UNDERLAY_DEVICE="eth1",
                                      NETDASH_NODE_VTEP="198.51.100.1")
    assert ok.returncode == 0 and ok.stdout.strip() == "eth1", ok.stderr


def test_this_suite_runs_on_the_simulated_underlay():
    assert settings.NETDASH_UNDERLAY == "simulated" and hostspecs.host_underlay_device() is None
