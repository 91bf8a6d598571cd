"""Fixtures for host-driver tests: real kernel, real dnsmasq and udhcpc, no Django, no DB.

Each test gets its own kernel-name prefix and state dir. The finalizer does not trust the
driver under test: it kills processes named by pid files in the state dir (only if their
argv mentions that state dir) and any dnsmasq/udhcpc inside our namespaces, then deletes
every namespace with the prefix and the /etc/netns entries.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import signal
import string
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tenants.host import HostConfig, LinuxHostDriver, netns, process  # noqa: E402


def _random_prefix() -> str:
    return "t" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(4)) + "-"


def cleanup_prefix(prefix: str, state_dir: Path) -> list[str]:
    """Remove everything a test with ``prefix``/``state_dir`` may have left; return leftovers found."""
    found: list[str] = []
    victims: set[int] = set()
    if state_dir.exists():
        for pid_file in state_dir.rglob("*.pid"):
            try:
                pid = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                continue
            if any(str(state_dir) in a for a in process.cmdline(pid) or []):
                victims.add(pid)
    ours = [n for n in netns.list_names() if n.startswith(prefix)]
    inodes = {ino for ino in (netns.inode(name) for name in ours) if ino is not None}
    victims |= {p.pid for p in process.processes(inodes) if p.program in ("dnsmasq", "udhcpc")}
    for pid in victims:
        found.append(f"pid {pid}: {' '.join(process.cmdline(pid) or [])}")
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for name in ours:
        found.append(f"netns {name}")
        subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)
    for d in Path("/etc/netns").glob(f"{prefix}*") if Path("/etc/netns").exists() else []:
        found.append(f"resolv {d}")
        shutil.rmtree(d, ignore_errors=True)
    shutil.rmtree(state_dir, ignore_errors=True)
    return found


@pytest.fixture
def host_config() -> Iterator[Callable[[], HostConfig]]:
    """Factory of fresh (prefix, state dir) configs; all cleaned up after the test."""
    made: list[HostConfig] = []

    def make() -> HostConfig:
        # /tmp, not pytest's tmp_path: dnsmasq drops to its own user and must traverse it.
        d = Path(tempfile.mkdtemp(prefix="netdash-host-"))
        os.chmod(d, 0o755)  # noqa: S103
        cfg = HostConfig(prefix=_random_prefix(), state_dir=d / "state")
        made.append(cfg)
        return cfg

    yield make
    for cfg in made:
        cleanup_prefix(cfg.prefix, cfg.state_dir)
        shutil.rmtree(cfg.state_dir.parent, ignore_errors=True)


class PatientDriver(LinuxHostDriver):
    """The driver, but ``ensure_instance`` waits for the lease however long a loaded machine needs.

    udhcpc goes to the background after its first ~3 s window and keeps trying (the product relies on that);
    on a CI machine busy with other suites that window can pass before the first ACK, and the test would see a
    client that is about to lease as one that failed.
    """

    def ensure_instance(self, spec, *, wait: bool = True):  # type: ignore[override]
        state = super().ensure_instance(spec, wait=wait)
        if wait and state.lease is None:
            state = dataclasses.replace(state, lease=self.wait_instance_lease(spec.kernel_id))
        return state

    def wait_instance_lease(self, inst_id, pred=None, timeout: float = 20.0):  # type: ignore[override]
        return super().wait_instance_lease(inst_id, pred, timeout=timeout)


@pytest.fixture
def driver(host_config: Callable[[], HostConfig]) -> LinuxHostDriver:
    """A driver on its own prefix and state dir."""
    return PatientDriver(host_config())


@pytest.fixture
def fast_driver(driver) -> LinuxHostDriver:
    """The same driver with HostConfig.fast_ipv6 (instances solicit routers at once and skip DAD)."""
    return type(driver)(dataclasses.replace(driver.config, fast_ipv6=True))
