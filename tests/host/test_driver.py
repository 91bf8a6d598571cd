"""Host driver against the real kernel, real dnsmasq and real udhcpc (root required)."""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import threading
import time

import pytest
from host_helpers import ns_exec, wait_for

from tenants.host import (
    HostDriver,
    InstanceSpec,
    LeaseWatcher,
    LinuxHostDriver,
    NetworkSpec,
    ReservationSpec,
    SubnetSpec,
    inspect_namespace,
    netns,
)

pytestmark = pytest.mark.host

if os.geteuid() != 0:  # CI runs as root, so these never silently skip there
    pytest.skip("host tests need root", allow_module_level=True)

def subnet(domain="t1.internal", **kw):
    base = dict(cidr="192.168.1.0/24", gateway="192.168.1.1", dhcp_address="192.168.1.2", domain=domain,
                lease_seconds=3600)
    return SubnetSpec(**{**base, **kw})


def network(nid, *reservations, domain="t1.internal"):
    return NetworkSpec(nid, (subnet(domain=domain),), tuple(reservations))


def our_namespaces(d: HostDriver) -> list[str]:
    return [n for n in netns.list_names() if n.startswith(d.config.prefix)]


def link(ns, name):
    return next(x for x in inspect_namespace(ns).links if x.name == name)


def test_two_tenants_same_subnet_are_isolated(driver):
    d = driver
    # Static mode, as in production: dnsmasq answers only the MACs it holds a reservation for.
    d.ensure_network(network("a1", ReservationSpec("02:00:00:00:01:01", "one", "192.168.1.10")))
    d.ensure_network(network("a2", ReservationSpec("02:00:00:00:02:01", "two", "192.168.1.10")))
    i1 = d.ensure_instance(InstanceSpec("b1", "a1", "02:00:00:00:01:01", "one"))
    i2 = d.ensure_instance(InstanceSpec("b2", "a2", "02:00:00:00:02:01", "two"))
    for inst, nid in ((i1, "a1"), (i2, "a2")):
        assert inst.lease is not None
        assert inst.lease.server_id == ipaddress.ip_address("192.168.1.2")
        assert inst.lease.ip in ipaddress.ip_network("192.168.1.0/24")
        assert [x.ip for x in d.network_leases(nid)] == [inst.lease.ip]
        assert str(inst.lease.ip) in ns_exec(inst.ns, "ip", "-4", "addr").stdout
    # Each instance reaches its own DHCP server only: the ARP answer comes from its network's interface.
    macs = {}
    for inst, nid in ((i1, "a1"), (i2, "a2")):
        ns_exec(inst.ns, "busybox", "ping", "-c", "1", "-W", "2", "192.168.1.2")
        neigh = next(x for x in inspect_namespace(inst.ns).neighbours if x.ip == "192.168.1.2")
        macs[nid] = link(d.names.dhcp_ns(nid), d.names.dhcp_dev(nid)).mac
        assert neigh.mac == macs[nid]
    assert macs["a1"] != macs["a2"]
    # And nothing we created lives in the root namespace.
    root = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    assert d.config.prefix not in root


def test_reservation_change_reloads_with_sighup(driver):
    d = driver
    mac = "02:00:00:00:03:01"
    st = d.ensure_network(network("a3", ReservationSpec(mac, "fixed", "192.168.1.50")))
    inst = d.ensure_instance(InstanceSpec("b3", "a3", mac, "fixed"))
    assert inst.lease is not None and str(inst.lease.ip) == "192.168.1.50"
    log = d.names.dnsmasq_log("a3")
    size = log.stat().st_size
    st2 = d.ensure_network(network("a3", ReservationSpec(mac, "fixed", "192.168.1.60")))
    assert st2.dnsmasq_pid == st.dnsmasq_pid  # reloaded, not restarted
    # ...and only returned once dnsmasq had re-read its files: a renew sent now meets the new reservation.
    assert f"read {d.names.opts('a3')}".encode() in log.read_bytes()[size:]
    assert d.names.hosts("a3").read_text() == f"{mac},192.168.1.60,fixed\n"
    d.renew_instance("b3")  # renew of .50 is NAKed ("static lease available"), then re-discovers
    lease = d.wait_instance_lease("b3", lambda x: str(x.ip) == "192.168.1.60")
    assert lease is not None and str(lease.ip) == "192.168.1.60"
    assert "192.168.1.60/24" in ns_exec(inst.ns, "ip", "-4", "addr").stdout
    size = log.stat().st_size
    assert d.refresh_network(network("a3", ReservationSpec(mac, "fixed", "192.168.1.70")))  # the jobs' fast path
    assert f"read {d.names.opts('a3')}".encode() in log.read_bytes()[size:]
    # Right after a first lease the pid file names udhcpc's exited first process until its daemon rewrites it:
    # a renew in that window waits for the daemon instead of failing with "no running DHCP client".
    pid_file = d.names.udhcpc_pid("b3")
    daemon_pid = pid_file.read_text()
    first = subprocess.Popen(["true"])
    first.wait()
    pid_file.write_text(f"{first.pid}\n")
    threading.Timer(0.3, pid_file.write_text, [daemon_pid]).start()
    d.renew_instance("b3")
    assert d.wait_instance_lease("b3", lambda x: str(x.ip) == "192.168.1.70") is not None


def test_dns_answers_instance_names_and_never_forwards(driver):
    d = driver
    d.ensure_network(network("a4", ReservationSpec("02:00:00:00:04:01", "hosta", "192.168.1.41"),
                             ReservationSpec("02:00:00:00:04:02", "hostb", "192.168.1.42"), domain="t4.internal"))
    a = d.ensure_instance(InstanceSpec("b4", "a4", "02:00:00:00:04:01", "hosta"))
    b = d.ensure_instance(InstanceSpec("b5", "a4", "02:00:00:00:04:02", "hostb"))
    out = ns_exec(a.ns, "busybox", "nslookup", "hostb.t4.internal", "192.168.1.2").stdout
    assert str(b.lease.ip) in out
    # The instance's resolv.conf (used by `ip netns exec`) points at the network's dnsmasq.
    assert "nameserver 192.168.1.2" in d.names.resolv_conf("b4").read_text()
    other = ns_exec(a.ns, "busybox", "nslookup", "example.com", "192.168.1.2", check=False, timeout=15)
    assert other.returncode != 0 or "Address" not in other.stdout.split("example.com", 1)[-1]


def test_remove_instance_releases_and_remove_network_leaves_nothing(driver):
    d = driver
    d.ensure_network(network("a6", ReservationSpec("02:00:00:00:06:01", "six", "192.168.1.61"),
                             ReservationSpec("02:00:00:00:06:02", "seven", "192.168.1.62")))
    inst = d.ensure_instance(InstanceSpec("b6", "a6", "02:00:00:00:06:01", "six"))
    d.ensure_instance(InstanceSpec("b7", "a6", "02:00:00:00:06:02", "seven"))
    assert inst.lease.ip in [x.ip for x in d.network_leases("a6")]
    d.remove_instance("b6")
    assert wait_for(lambda: "02:00:00:00:06:01" not in [x.mac for x in d.network_leases("a6")])
    assert not d.names.resolv_dir("b6").exists()
    pids = [d.dnsmasq_pid("a6"), d.udhcpc_pid("b7")]
    t0 = time.perf_counter()
    d.remove_network("a6")  # cascades to b7
    print(f"remove network with one instance: {(time.perf_counter() - t0) * 1000:.1f} ms")
    assert our_namespaces(d) == []
    assert all(not os.path.exists(f"/proc/{p}/cmdline") or not open(f"/proc/{p}/cmdline").read() for p in pids)
    assert list(d.config.state_dir.iterdir()) == []
    d.remove_network("a6")  # already gone is fine
    d.remove_instance("b6")


def test_crash_recovery(driver):
    d = driver
    spec = network("a8", ReservationSpec("02:00:00:00:08:01", "eight", "192.168.1.80"))
    ispec = InstanceSpec("b8", "a8", "02:00:00:00:08:01", "eight")
    st = d.ensure_network(spec)
    ip = d.ensure_instance(ispec).lease.ip
    # dnsmasq killed -> ensure restarts it; the instance keeps its address after renew.
    os.kill(st.dnsmasq_pid, signal.SIGKILL)
    wait_for(lambda: d.dnsmasq_pid("a8") is None)
    st2 = d.ensure_network(spec)
    assert st2.dnsmasq_pid not in (None, st.dnsmasq_pid)
    before = d.instance_lease("b8")
    d.renew_instance("b8")
    lease = d.wait_instance_lease("b8", lambda x: x.obtained > before.obtained)
    assert lease is not None, "no new lease from the restarted dnsmasq"
    assert lease.ip == ip
    # All namespaces deleted behind our back -> ensure rebuilds, same IP from the surviving lease file.
    old_pids = [st2.dnsmasq_pid, d.udhcpc_pid("b8")]
    for name in our_namespaces(d):
        subprocess.run(["ip", "netns", "delete", name], check=True)
    assert d.dnsmasq_pid("a8") is None
    d.ensure_network(spec)
    inst = d.ensure_instance(ispec)
    assert inst.lease is not None and inst.lease.ip == ip
    for pid in old_pids:  # the stranded processes were ended, not left in nameless namespaces
        assert wait_for(lambda p=pid: not os.path.exists(f"/proc/{p}/cmdline") or not open(f"/proc/{p}/cmdline").read())
    # Running ensure twice changes nothing.
    before = (d.dnsmasq_pid("a8"), d.udhcpc_pid("b8"), inspect_namespace(inst.ns).links,
              inspect_namespace(d.names.seg_ns("a8")).links)
    d.ensure_network(spec)
    d.ensure_instance(ispec)
    after = (d.dnsmasq_pid("a8"), d.udhcpc_pid("b8"), inspect_namespace(inst.ns).links,
             inspect_namespace(d.names.seg_ns("a8")).links)
    assert before == after
    # An orphan namespace with our prefix is removed; wanted things stay.
    netns.create(d.names.inst_ns("ff"))
    found = d.remove_orphans({"a8"}, {"b8"})
    assert "ff" in found.instances
    assert d.names.inst_ns("ff") not in our_namespaces(d)
    assert sorted(our_namespaces(d)) == sorted([d.names.seg_ns("a8"), d.names.dhcp_ns("a8"), inst.ns])
    assert d.remove_orphans(set(), set()).networks.keys() == {"a8"}
    assert our_namespaces(d) == []


def test_lease_watcher_add_and_del(driver):
    d = driver
    d.ensure_network(network("a9", ReservationSpec("02:00:00:00:09:01", "nine", "192.168.1.90")))
    with LeaseWatcher() as w:
        w.add("a9", d.names.net_dir("a9"))
        received: list[tuple[float, object]] = []
        stop = threading.Event()

        def listen():
            while not stop.is_set():
                received.extend((time.time(), e) for e in w.poll(0.05))

        t = threading.Thread(target=listen)
        t.start()
        try:
            inst = d.ensure_instance(InstanceSpec("b9", "a9", "02:00:00:00:09:01", "nine"))
            assert wait_for(lambda: any(e.kind == "add" for _, e in received), timeout=2)
            written = os.stat(d.names.leases("a9")).st_mtime
            got, e = next((at, e) for at, e in received if e.kind == "add")
            assert (e.network, e.mac, e.ip, e.hostname) == ("a9", "02:00:00:00:09:01", inst.lease.ip, "nine")
            assert e.expiry > time.time() + 3000
            print(f"lease file written -> add event: {(got - written) * 1000:.1f} ms")
            assert got - written < 0.1
            d.remove_instance("b9")
            assert wait_for(lambda: any(e.kind == "del" for _, e in received), timeout=2)
        finally:
            stop.set()
            t.join()
        dels = [e for _, e in received if e.kind == "del"]
        assert [(x.mac, x.ip, x.hostname) for x in dels] == [("02:00:00:00:09:01", inst.lease.ip, "nine")]
        assert [e.kind for _, e in received] == ["add", "del"]


def test_transcript_replayed_with_bash_leases(driver, host_config):
    """The command transcript of a realised network, replayed on a clean prefix, leases an address."""
    d = driver
    spec = network("aa", ReservationSpec("02:00:00:00:0a:01", "replay", "192.168.1.77"))
    ispec = InstanceSpec("ba", "aa", "02:00:00:00:0a:01", "replay")
    d.ensure_network(spec)
    assert d.ensure_instance(ispec).lease.ip == ipaddress.ip_address("192.168.1.77")
    fresh = LinuxHostDriver(host_config())
    script = "\n".join(["set -e", f"mkdir -p -m 755 {fresh.config.state_dir}",
                        *fresh.transcript_network(spec), *fresh.transcript_instance(ispec)])
    r = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lease = fresh.instance_lease("ba")
    assert lease is not None and str(lease.ip) == "192.168.1.77"
    # bash returns when udhcpc's first process exits; its daemon rewrites the pid file a moment later.
    assert fresh.dnsmasq_pid("aa") is not None and wait_for(lambda: fresh.udhcpc_pid("ba"))
    assert "192.168.1.77/24" in ns_exec(fresh.names.inst_ns("ba"), "ip", "-4", "addr").stdout
    # The replayed host is what the driver would have built: ensure finds nothing to change.
    pid = fresh.dnsmasq_pid("aa")
    fresh.ensure_network(spec)
    assert fresh.dnsmasq_pid("aa") == pid
    fresh.remove_network("aa")
    assert [n for n in netns.list_names() if n.startswith(fresh.config.prefix)] == []
