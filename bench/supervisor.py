"""The bench's outer process: a private environment, the measuring child, and cleanup that always runs.

Why a child process: Django reads the prefix, state dir, database and Redis URL once at start-up, and the bench
must never touch the ones of a running ``make run``. The supervisor makes a private run directory, starts its own
Redis on a free loopback port, and re-runs ``manage.py bench --child`` with that environment. Whatever happens to
the child (an exception, Ctrl-C, SIGKILL), the supervisor then kills the processes the child recorded (by pid,
checked against the run directory in their environment) and removes every kernel object with the bench prefixes.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tenants.host import HostDriver, LinuxHostDriver
from tenants.host.config import HostConfig
from tenants.host.netns import list_names

ROOT = Path(__file__).resolve().parent.parent
RUN_MARKER = "NETDASH_BENCH_RUN"
# Two random letters per run, chosen by the supervisor and inherited by the child: two benches on one machine
# (two engineers, or a bench beside CI) never clean up each other's objects.
TAG_ENV = "NETDASH_BENCH_TAG"


def prefixes() -> dict[str, str]:
    """One prefix per contender (``b<tag>n-``, ``b<tag>f-``, ``b<tag>s-``), so each can be cleaned and counted
    on its own and none can touch another's objects; and one per simulated node of the agents row
    (``b<tag>1-``, ``b<tag>2-``: bench/agents_rows.py)."""
    tag = os.environ.setdefault(TAG_ENV, "".join(random.choices(string.ascii_lowercase, k=2)))
    return {"netdash": f"b{tag}n-", "floor": f"b{tag}f-", "shell": f"b{tag}s-", "node1": f"b{tag}1-",
            "node2": f"b{tag}2-"}


# The agents row's simulated nodes: their state directory is NETDASH_STATE_DIR/<NETDASH_NODE>, as any agent's.
NODE_NAMES = {"node1": "bench1", "node2": "bench2"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def state_dir(run_dir: Path, who: str) -> Path:
    if who in NODE_NAMES:
        return run_dir / "state-netdash" / NODE_NAMES[who]
    return run_dir / f"state-{who}"


def drivers(run_dir: Path) -> dict[str, HostDriver]:
    """The host driver of each contender (the pure driver: no settings needed)."""
    return {who: LinuxHostDriver(HostConfig(prefix=p, state_dir=state_dir(run_dir, who)))
            for who, p in prefixes().items()}


def record_pid(run_dir: Path, pid: int) -> None:
    """Remember a process the child started, for the supervisor's cleanup."""
    with open(run_dir / "pids", "a") as f:
        f.write(f"{pid}\n")


def _ours(pid: int, run_dir: Path) -> bool:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"{RUN_MARKER}={run_dir}".encode() in env


def kill_recorded(run_dir: Path) -> None:
    """SIGTERM, then SIGKILL, every recorded pid that still carries this run's marker."""
    try:
        pids = [int(x) for x in (run_dir / "pids").read_text().split()]
    except FileNotFoundError:
        return
    live = [p for p in pids if _ours(p, run_dir)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in live:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(_ours(p, run_dir) for p in live):
            time.sleep(0.05)
        live = [p for p in live if _ours(p, run_dir)]
        if not live:
            return


def remove_host_objects(run_dir: Path) -> list[str]:
    """Remove everything with a bench prefix; return the namespace names still present afterwards."""
    for d in drivers(run_dir).values():
        try:
            d.remove_orphans(set(), set())
        except Exception as exc:  # keep cleaning the other prefixes
            print(f"bench: cleanup of {d.config.prefix} failed: {exc}", file=sys.stderr)
    # Underlays (the multinode and agents rows' nodes), then the fabrics they hang on (netdash's, floor's) last.
    for d in reversed(drivers(run_dir).values()):
        try:
            d.remove_overlay()
        except Exception as exc:
            print(f"bench: overlay cleanup of {d.config.prefix} failed: {exc}", file=sys.stderr)
    from .shell import remove_root_links

    try:
        remove_root_links(prefixes()["shell"])  # a shell run interrupted between `ip link add` and the move
    except Exception as exc:
        print(f"bench: cleanup of root-namespace links failed: {exc}", file=sys.stderr)
    return [n for n in list_names() if n.startswith(tuple(prefixes().values()))]


def bench_env(run_dir: Path, redis_url: str) -> dict[str, str]:
    netdash_prefix = prefixes()["netdash"]  # chooses the run's tag first, so the copy below carries it
    env = dict(os.environ)
    env.update({
        RUN_MARKER: str(run_dir),
        "NETDASH_PREFIX": netdash_prefix,
        "NETDASH_STATE_DIR": str(state_dir(run_dir, "netdash")),
        "NETDASH_VAR_DIR": str(run_dir),
        "DATABASE_URL": f"sqlite:///{run_dir / 'bench.sqlite3'}",
        "REDIS_URL": redis_url,
        "NETDASH_CHANNEL_PREFIX": "netdash-bench",
        "NETDASH_NODE": "bench",
        # The periodic reconcile would land in the middle of a measurement; the start-up one still runs.
        "NETDASH_RECONCILE_SECONDS": "3600",
        "LOG_LEVEL": env.get("LOG_LEVEL", "WARNING"),
        "DJANGO_SETTINGS_MODULE": "netdash.settings",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def supervise(child_args: list[str], *, redis_url: str | None, keep: bool) -> int:
    """Run the measuring child in a private environment; clean up whatever happens. Returns its exit code."""
    if os.geteuid() != 0:
        print("bench: needs root (network namespaces, dnsmasq)", file=sys.stderr)
        return 2
    run_dir = Path(tempfile.mkdtemp(prefix="netdash-bench."))
    run_dir.chmod(0o755)  # dnsmasq drops privileges and must reach its state files
    started_redis = False
    code = 1
    child: subprocess.Popen[bytes] | None = None
    try:
        if redis_url is None:
            port = free_port()
            subprocess.run([str(ROOT / "scripts/redis.sh"), "start", str(port), str(run_dir / "redis")],
                           check=True, stdout=subprocess.DEVNULL)
            started_redis = True
            redis_url = f"redis://127.0.0.1:{port}/0"
        env = bench_env(run_dir, redis_url)
        child = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "bench", "--child", *child_args],
                                 env=env, cwd=ROOT)
        code = child.wait()
    except KeyboardInterrupt:
        print("\nbench: interrupted; cleaning up", file=sys.stderr)
        if child is not None:
            try:
                code = child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.kill()
                code = child.wait()
        code = code or 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not skip the cleanup
        kill_recorded(run_dir)
        left = remove_host_objects(run_dir)
        if left:
            print(f"bench: WARNING {len(left)} namespace(s) left: {', '.join(left[:5])}", file=sys.stderr)
        if started_redis:
            subprocess.run([str(ROOT / "scripts/redis.sh"), "stop", str(run_dir / "redis")], check=False)
        if keep:
            print(f"bench: run directory kept: {run_dir}")
        else:
            shutil.rmtree(run_dir, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)
    return code
