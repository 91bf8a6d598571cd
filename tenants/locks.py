"""Per-network Redis locks that a crashed holder cannot keep.

Why not a plain ``redis.lock``: when an agent is killed mid-job (SIGKILL, OOM, power to one process) its lock
stays in Redis until the TTL runs out, and the restarted agent's start-up reconcile would wait for it — measured
in the fault drills: a 60 s stall per network, then a TimeoutError. Here every lock's token names its holder
(host boot id, pid and the process's start time), so a waiter on the same host can tell that the holder no
longer exists and take the lock over at once. Holders on other hosts are left to the TTL.

Why the start time is read from ``/proc/PID/stat`` and not from ``psutil.Process(pid).create_time()``: psutil
returns wall-clock seconds (start ticks + ``btime``, and Linux recomputes ``btime`` from the current clock on
every read), so an NTP step between the holder writing its token and a waiter checking it would make a live
holder look dead and its lock be broken under it (psutil issues #2526, #2541). The tick count never changes for
a process, a recycled pid gets another one, and tokens written by an older agent keep the same format.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from functools import cache

import django_rq
from django.conf import settings
from redis import Redis

LOCK_TIMEOUT = 120  # seconds; longer than any single network operation
LOCK_WAIT = 60
POLL = 0.2  # how often a waiter re-checks whether the holder is still alive

KEY_PREFIX = "netdash:lock:"

# Compare-and-delete: only the exact token we judged dead is removed, never a newer holder's.
_BREAK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


@cache
def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat); None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def owner_token() -> str:
    """A unique lock token that says who holds it: ``boot_id:pid:start_time:random``."""
    pid = os.getpid()
    return f"{_boot_id()}:{pid}:{_start_time(pid)}:{uuid.uuid4().hex}"


def holder_is_dead(token: str) -> bool:
    """True only when ``token`` was taken on this host (same boot) by a process that no longer exists."""
    parts = token.split(":")
    if len(parts) != 4 or parts[0] != _boot_id() or not parts[1].isdigit():
        return False
    return _start_time(int(parts[1])) != parts[2]


def break_if_dead(connection: Redis, key: str) -> bool:
    """Delete lock ``key`` if its holder is a dead process on this host; True if it was broken."""
    raw = connection.get(key)
    if raw is None:
        return False
    token = raw.decode() if isinstance(raw, bytes) else str(raw)
    if not holder_is_dead(token):
        return False
    return bool(connection.eval(_BREAK, 1, key, token))


@contextlib.contextmanager
def held(connection: Redis, key: str, *, what: str, timeout: float = LOCK_TIMEOUT,
         wait: float = LOCK_WAIT) -> Iterator[None]:
    """Hold ``key`` for the block; wait up to ``wait`` s for a live holder, take over from a dead one."""
    lock = connection.lock(key, timeout=timeout)
    token = owner_token()
    deadline = time.monotonic() + wait
    while not lock.acquire(blocking=True, blocking_timeout=POLL, token=token):
        if break_if_dead(connection, key):
            continue
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} is busy with another job; try again")
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            lock.release()


@contextlib.contextmanager
def held_if_free(connection: Redis, keys: list[str], *, timeout: float = LOCK_TIMEOUT) -> Iterator[set[str]]:
    """Take each lock in ``keys`` that is free right now, without waiting (one round trip); yield those taken.

    For batches: a job that holds its own object's lock adds every other object it can take *now*. It never
    waits while holding a lock, so two batches cannot deadlock; a busy (or crashed) holder's object is left
    to its own job, whose blocking :func:`held` takes over from a dead holder.
    """
    taken: set[str] = set()
    token = owner_token()
    if keys:
        pipe = connection.pipeline(transaction=False)
        for key in keys:
            pipe.set(key, token, nx=True, px=int(timeout * 1000))
        taken = {key for key, ok in zip(keys, pipe.execute(), strict=True) if ok}
    try:
        yield taken
    finally:
        if taken:
            with contextlib.suppress(Exception):
                pipe = connection.pipeline(transaction=False)
                for key in taken:
                    pipe.eval(_BREAK, 1, key, token)
                pipe.execute()


# --- the locks the jobs take --------------------------------------------------------------------------

def network_lock_key(network_id: int) -> str:
    """The Redis key of one network's lock (the only place a lock key is spelled)."""
    return f"{KEY_PREFIX}network:{network_id}"


def router_lock_key(router_id: int) -> str:
    """The Redis key of one router's lock."""
    return f"{KEY_PREFIX}router:{router_id}"


def lock_keys(connection: Redis) -> list[bytes]:
    """Every lock key in Redis right now (tests and drills clear or count them)."""
    return list(connection.scan_iter(f"{KEY_PREFIX}*"))


def _connection() -> Redis:
    return django_rq.get_connection(settings.NETDASH_AGENT_QUEUE)


@contextlib.contextmanager
def network_lock(network_id: int) -> Iterator[None]:
    """Serialise host work on one network across workers and nodes (a crashed holder is taken over at once)."""
    with held(_connection(), network_lock_key(network_id), what=f"network {network_id}"):
        yield


@contextlib.contextmanager
def free_network_locks(network_ids: list[int]) -> Iterator[list[int]]:
    """The networks among ``network_ids`` whose lock is free right now, held for the block (no waiting)."""
    keys = {network_lock_key(pk): pk for pk in network_ids}
    with held_if_free(_connection(), list(keys)) as taken:
        yield [keys[k] for k in taken]


@contextlib.contextmanager
def router_lock(router_id: int) -> Iterator[None]:
    """Serialise host work on one router (its namespace and NAT table), as ``network_lock`` does for networks."""
    with held(_connection(), router_lock_key(router_id), what=f"router {router_id}"):
        yield
