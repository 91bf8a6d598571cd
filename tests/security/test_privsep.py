"""Privilege separation and production settings (GitHub issue 8, "Security").

* The web process works with no capabilities at all: daphne started under ``setpriv`` with an empty bounding
  set (uid 0 with an empty bounding set has no capabilities — a non-root uid cannot run this venv under /root),
  creates a network through the API (201, pending, enqueued for the agent), and ``/proc/<pid>/status`` proves it
  held none.
* The agent works with exactly the capabilities ``deploy/netdash-agent.service`` grants: the host driver, run
  under that bounding set, starts dnsmasq, leases an address to an instance and still recognises its own dnsmasq
  on the next converge (host test: root, real kernel).
* ``manage.py check --deploy`` is clean with production settings; production refuses to start without SECRET_KEY.
* dnsmasq is no open resolver: bound to its one interface, ``--local-service``, ``--no-resolv``, no ``--server``.
  That an outside name gets no answer from inside a network is tested against the real dnsmasq in
  ``tests/host/test_driver.py::test_dns_answers_instance_names_and_never_forwards`` and
  ``tests/agent/test_realise.py::test_dns_inside_the_network_answers_instance_names_only``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from security_helpers import record

from tenants.testing import serve_daphne

ROOT = Path(__file__).resolve().parents[2]
SETPRIV = shutil.which("setpriv")


def _caps(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    return {k: int(v, 16) for k, v in re.findall(r"^(Cap\w+):\s+([0-9a-f]+)$", status, re.M)}


# --- the web process without capabilities ------------------------------------------------------------------

@pytest.fixture
def unprivileged_daphne(django_db_setup, django_db_blocker):
    """daphne serving the (file) test database with every capability dropped before exec."""
    from django.db import connection

    if SETPRIV is None:
        pytest.fail("setpriv (util-linux) is required")
    with django_db_blocker.unblock():
        db_name = connection.settings_dict["NAME"]
    log = Path(os.environ.get("ARTIFACTS_DIR", "artifacts")) / "privsep-daphne.log"
    wrapper = [SETPRIV, "--bounding-set=-all", "--inh-caps=-all", "--ambient-caps=-all", "--no-new-privs"]
    with serve_daphne(db_name, log, wrapper=wrapper) as (base, proc):
        yield {"url": base, "pid": proc.pid}


@pytest.mark.django_db(transaction=True)
def test_web_serves_and_creates_networks_without_any_capability(unprivileged_daphne, tenant_factory,
                                                                member_factory):
    import django_rq

    from api import services as token_services
    from tenants.models import Network
    from tenants.queue import queue_name_for_node

    caps = _caps(unprivileged_daphne["pid"])
    assert caps["CapEff"] == caps["CapPrm"] == caps["CapBnd"] == caps["CapAmb"] == 0, caps
    user = member_factory(tenant_factory(slug="privsep"), role="admin")
    _, secret = token_services.api_token_create(user=user, name="privsep")
    body = json.dumps({"name": "unprivileged-net", "subnet": {"cidr": "10.66.0.0/24"}}).encode()
    request = urllib.request.Request(unprivileged_daphne["url"] + "/api/v1/networks/", data=body, method="POST",
                                     headers={"Authorization": f"Bearer {secret}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (loopback)
        assert response.status == 201
        created = json.loads(response.read())
    assert created["status"] == "pending" and created["subnets"][0]["cidr"] == "10.66.0.0/24"
    network = Network.objects.get(pk=created["id"])
    queue = django_rq.get_queue(queue_name_for_node(network.node))
    jobs = [j for j in queue.get_jobs() if j.func_name == "tenants.jobs.realise_network" and j.args == (network.pk,)]
    assert jobs, "the realise job was not enqueued for the agent"
    for job in jobs:  # no agent runs in this test: do not leave the job to another test's agent
        job.delete()
    assert _caps(unprivileged_daphne["pid"])["CapEff"] == 0
    record("privsep.web", examples=1)


# --- the agent with exactly the unit's capabilities ----------------------------------------------------------

def unit_capabilities(unit: str = "netdash-agent.service") -> list[str]:
    text = (ROOT / "deploy" / unit).read_text()
    line = re.search(r"^CapabilityBoundingSet=(.*)$", text, re.M)
    assert line, f"{unit} has no CapabilityBoundingSet"
    return line.group(1).split()


AGENT_SCRIPT = r"""
import json, re, sys
from pathlib import Path
from tenants.host import HostConfig, LinuxHostDriver
from tenants.host.specs import InstanceSpec, NetworkSpec, ReservationSpec, SubnetSpec

prefix, state = sys.argv[1], Path(sys.argv[2])
driver = LinuxHostDriver(HostConfig(prefix=prefix, state_dir=state))
mac = "02:00:00:00:66:01"
net = NetworkSpec(kernel_id="5ec0", subnets=(SubnetSpec(cidr="10.66.1.0/24", gateway="10.66.1.1",
                  dhcp_address="10.66.1.2", lease_seconds=600, tag="s1"),),
                  reservations=(ReservationSpec(mac=mac, hostname="vm", ip="10.66.1.10"),))
first = driver.ensure_network(net).dnsmasq_pid
second = driver.ensure_network(net).dnsmasq_pid
driver.ensure_instance(InstanceSpec(kernel_id="5ec1", network_kernel_id="5ec0", mac=mac, hostname="vm"), wait=True)
lease = driver.instance_lease("5ec1")
caps = dict(re.findall(r"^(Cap\w+):\s+(\S+)$", Path("/proc/self/status").read_text(), re.M))
print(json.dumps({"first": first, "second": second, "seen": driver.dnsmasq_pid("5ec0"),
                  "lease": str(lease.ip) if lease else None, "CapEff": caps["CapEff"]}))
"""


@pytest.mark.host
def test_agent_works_with_exactly_the_units_capabilities():
    """Found by this test: without CAP_SYS_PTRACE the agent cannot read /proc/<dnsmasq>/ns/net (dnsmasq runs as
    its own user), so it took its own dnsmasq for dead on every converge."""
    if os.geteuid() != 0:
        pytest.fail("host tests run as root (CI is root)")
    caps = unit_capabilities()
    bounding = "-all," + ",".join("+" + c.lower().removeprefix("cap_") for c in caps)
    prefix = "p" + "".join(secrets.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(3)) + "-"
    state = Path(tempfile.mkdtemp(prefix="netdash-privsep-"))
    state.chmod(0o755)  # dnsmasq drops to its own user and must reach its files
    try:
        done = subprocess.run([SETPRIV, f"--bounding-set={bounding}", "--inh-caps=-all", sys.executable, "-c",
                               AGENT_SCRIPT, prefix, str(state)], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        assert done.returncode == 0, done.stderr[-3000:]
        out = json.loads(done.stdout.strip().splitlines()[-1])
        effective = int(out["CapEff"], 16)
        assert effective & (1 << 21) and not effective & (1 << 16)  # CAP_SYS_ADMIN yes, CAP_SYS_MODULE no
        assert out["first"] and out["second"] == out["first"] == out["seen"], out  # not restarted, still ours
        assert out["lease"] == "10.66.1.10"
    finally:
        from tenants.host import HostConfig, LinuxHostDriver

        driver = LinuxHostDriver(HostConfig(prefix=prefix, state_dir=state))
        driver.remove_instance("5ec1", release=False)
        driver.remove_network("5ec0")
        shutil.rmtree(state, ignore_errors=True)
    record("privsep.agent", examples=1)


# --- production settings ------------------------------------------------------------------------------------

def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    var = tempfile.mkdtemp(prefix="netdash-deploy-")
    full = dict(os.environ, NETDASH_VAR_DIR=var, **env)
    for key in ("SECRET_KEY", "DEBUG", "NETDASH_PRODUCTION"):
        if key not in env:
            full.pop(key, None)
    try:
        return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=full, capture_output=True,
                              text=True, timeout=120)
    finally:
        shutil.rmtree(var, ignore_errors=True)


def test_check_deploy_is_clean_with_production_settings():
    done = _manage("check", "--deploy", NETDASH_PRODUCTION="1", DEBUG="0", SECRET_KEY=secrets.token_urlsafe(60),
                   ALLOWED_HOSTS="netdash.example.org")
    assert done.returncode == 0, done.stderr
    assert "System check identified no issues" in done.stdout + done.stderr
    record("deploy.check", examples=1)


def test_production_refuses_to_start_without_a_secret_key():
    done = _manage("check", NETDASH_PRODUCTION="1", DEBUG="0")
    assert done.returncode != 0 and "SECRET_KEY must be set in production" in done.stderr


def test_production_settings_require_https():
    code = ("from django.conf import settings as s; print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, "
            "s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS >= 31536000, s.DEBUG)")
    done = _manage("shell", "-c", code, NETDASH_PRODUCTION="1", DEBUG="0", SECRET_KEY=secrets.token_urlsafe(60))
    assert done.stdout.strip().splitlines()[-1].split() == ["True", "True", "True", "True", "False"], done.stderr


# --- dnsmasq is no open resolver -----------------------------------------------------------------------------

def test_dnsmasq_binds_its_interface_and_never_forwards():
    from tenants.host import dnsmasq
    from tenants.host.specs import NetworkSpec, SubnetSpec

    spec = NetworkSpec(kernel_id="ab12", subnets=(
        SubnetSpec(cidr="10.0.0.0/24", gateway="10.0.0.1", dhcp_address="10.0.0.2", domain="lab.internal",
                   tag="s1"),
        SubnetSpec(cidr="10.0.1.0/24", gateway=None, dhcp_address="10.0.1.2", dns_servers=("9.9.9.9",), tag="s2"),
    ))
    argv = dnsmasq.command_for(spec, binary="/usr/sbin/dnsmasq", interface="nd-dab12", pid_file=Path("/s/p"),
                               lease_file=Path("/s/l"), hosts_file=Path("/s/h"), opts_file=Path("/s/o"),
                               log_file=Path("/s/g")).argv()
    for flag in ("--bind-interfaces", "--interface=nd-dab12", "--except-interface=lo", "--local-service",
                 "--no-resolv", "--no-hosts", "--conf-file=/dev/null"):
        assert flag in argv, flag
    assert [a for a in argv if a.startswith("--interface=")] == ["--interface=nd-dab12"]
    assert not any(a.startswith(("--server", "--resolv-file", "--listen-address", "--rev-server")) for a in argv)
    assert "--local=/lab.internal/" in argv  # its own domain is answered here, never forwarded
