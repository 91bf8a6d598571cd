"""Helpers shared by host tests (a plain module; conftest names collide across test dirs)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable


def ns_exec(ns: str, *argv: str, check: bool = True, timeout: float = 10) -> subprocess.CompletedProcess[str]:
    """Run a command inside a namespace, like a person would."""
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=check,
                          timeout=timeout)


def wait_for(pred: Callable[[], object], timeout: float = 5.0, step: float = 0.01) -> object:
    """Poll ``pred`` until truthy; return its value (falsy on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


# Sends a router solicitation on a device and prints the first RA's flags as JSON: the instance's view of what
# the network advertises (the kernel keeps no copy of M/O, so read them off the wire with a raw ICMPv6 socket).
_RA_PROBE = r"""
import json, socket, struct, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.settimeout(float(sys.argv[2]))
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.sendto(bytes([133, 0, 0, 0, 0, 0, 0, 0]), ("ff02::2", 0, 0, socket.if_nametoindex(sys.argv[1])))
while True:
    data, _ = s.recvfrom(2000)
    if data[0] == 134:
        break
ra = {"M": data[5] >> 7 & 1, "O": data[5] >> 6 & 1, "router_lifetime": struct.unpack("!H", data[6:8])[0],
      "prefixes": []}
i = 16
while i + 2 <= len(data) and data[i + 1]:
    if data[i] == 3:
        ra["prefixes"].append({"prefix": socket.inet_ntop(socket.AF_INET6, data[i + 16:i + 32]) + f"/{data[i + 2]}",
                               "L": data[i + 3] >> 7 & 1, "A": data[i + 3] >> 6 & 1})
    i += data[i + 1] * 8
print(json.dumps(ra))
"""


def router_advertisement(ns: str, dev: str, timeout: float = 10.0) -> dict:
    """The RA a device in ``ns`` receives after soliciting one: M, O, router lifetime, prefixes with L and A."""
    out = ns_exec(ns, sys.executable, "-c", _RA_PROBE, dev, str(timeout), timeout=timeout + 5).stdout
    return json.loads(out)


def ipv6_addresses(ns: str, dev: str) -> list[dict]:
    """``ip -j -6 addr`` of one device: each address with its scope and flags (tentative, nodad, dynamic…)."""
    info = json.loads(ns_exec(ns, "ip", "-j", "-6", "addr", "show", "dev", dev).stdout)
    return [a for link in info for a in link.get("addr_info", [])]


def sysctl(ns: str, key: str) -> str:
    return ns_exec(ns, "sysctl", "-n", key).stdout.strip()
