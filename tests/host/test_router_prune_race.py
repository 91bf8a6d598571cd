"""prune() races the kernel: a network's deletion takes the veth peer (and so the router's end) with it.

The race is a window of microseconds between prune's link dump and its delete, so a real-kernel test cannot hit
it on purpose; CI hit it once under load (``NetlinkError(19, 'No such device')`` from ``realise_router``). This
fakes only the netlink handle prune is given and checks both halves: a vanished device or address is "already
done", while any other netlink error still fails the job.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from tenants.host.config import HostConfig
from tenants.host.kinds import router
from tenants.host.naming import Names
from tenants.host.specs import RouterSpec

PREFIX = "ndt"


class _Link(dict):
    def __init__(self, name: str, index: int) -> None:
        super().__init__(index=index)
        self._name = name

    def get_attr(self, key: str) -> str:
        assert key == "IFLA_IFNAME"
        return self._name


class _VanishingIPRoute:
    """A namespace holding one stale router port that is gone by the time it is deleted."""

    def __init__(self, port: str, code: int) -> None:
        self.port, self.code, self.deleted = port, code, []

    def get_links(self) -> list[_Link]:
        return [_Link("lo", 1), _Link(self.port, 7)]

    def get_addr(self, **_: object) -> list[object]:
        return []

    def link(self, command: str, **kwargs: object) -> None:
        self.deleted.append((command, kwargs))
        raise NetlinkError(self.code, "injected")


class _Session:
    def __init__(self, ipr: _VanishingIPRoute) -> None:
        self._ipr, self.forgotten = ipr, []

    def ipr(self, ns: str) -> _VanishingIPRoute:
        return self._ipr

    def forget(self, ns: str, name: str) -> None:
        self.forgotten.append(name)


def _prune(code: int) -> tuple[_VanishingIPRoute, _Session]:
    n = Names(HostConfig(PREFIX, Path("/nonexistent")))
    ipr = _VanishingIPRoute(n.router_port("abcd1234"), code)
    s = _Session(ipr)
    router.prune(s, n, RouterSpec(kernel_id="0000aa01", ports=(), gateway=None))  # type: ignore[arg-type]
    return ipr, s


def test_a_port_that_vanished_before_its_delete_counts_as_deleted() -> None:
    ipr, s = _prune(errno.ENODEV)
    assert ipr.deleted == [("del", {"index": 7})]
    assert s.forgotten == [ipr.port]


def test_other_netlink_errors_still_fail_the_prune() -> None:
    with pytest.raises(NetlinkError):
        _prune(errno.EPERM)
