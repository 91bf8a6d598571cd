"""Network locks in real Redis: one key per network, batches take only free ones, and a lock's token tells a
live holder from a dead one (a recycled pid has another start time)."""

import os
import subprocess
import sys

import django_rq
import pytest
from django.conf import settings

from tenants import locks


@pytest.fixture
def connection(agent_queue):
    return django_rq.get_connection(settings.NETDASH_AGENT_QUEUE)


def _held(connection) -> set[str]:
    return {k.decode() for k in locks.lock_keys(connection)}


def test_a_network_lock_is_one_key_while_held(connection):
    with locks.network_lock(7):
        assert _held(connection) == {locks.network_lock_key(7)}
        with locks.free_network_locks([7, 8, 9]) as taken:  # a batch never takes a held lock
            assert sorted(taken) == [8, 9]
            assert _held(connection) == {locks.network_lock_key(pk) for pk in (7, 8, 9)}
        assert _held(connection) == {locks.network_lock_key(7)}
    assert _held(connection) == set()


def test_a_token_names_a_live_holder_and_a_gone_one_is_dead():
    token = locks.owner_token()
    assert not locks.holder_is_dead(token)
    boot, pid, start, rand = token.split(":")
    # The same pid with another start time: what a recycled pid looks like.
    assert locks.holder_is_dead(f"{boot}:{pid}:{int(start) + 1}:{rand}")
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert locks.holder_is_dead(f"{boot}:{child.pid}:{start}:{rand}")
    # Another host (or boot), or a token this code did not write: left to the TTL, never judged dead.
    assert not locks.holder_is_dead(f"other-boot:{os.getpid()}:{int(start) + 1}:{rand}")
    assert not locks.holder_is_dead("not-a-token")
