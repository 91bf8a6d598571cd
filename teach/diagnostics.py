"""The fixed set of diagnostics a tenant may run in a namespace, and the validation of their arguments.

Pure (no Django, no kernel): the web process validates with it before enqueueing, the agent builds the argv from
the *validated* values again. Every command is an argv list — nothing is ever passed through a shell — and each
argument is parsed into a typed value first (``ipaddress`` for targets, an int range for counts).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

MAX_PING_COUNT = 5
PING_WAIT_SECONDS = 2
LOG_TAIL_LINES = 40


class DiagnosticError(ValueError):
    """A rejected request; the message says what would be accepted."""


@dataclass(frozen=True)
class Action:
    name: str
    label: str
    kinds: tuple[str, ...]  # target kinds (teach.models.TargetKind values) it applies to
    takes_target: bool = False


ACTIONS: dict[str, Action] = {a.name: a for a in (
    Action("ping", "ping an address", ("inst", "dhcp", "seg"), takes_target=True),
    Action("addr", "ip addr", ("inst", "dhcp", "seg")),
    Action("route", "ip route", ("inst", "dhcp", "seg")),
    Action("neigh", "ip neigh", ("inst", "dhcp", "seg")),
    Action("renew", "renew the DHCP lease", ("inst",)),
    Action("dnsmasq_log", "dnsmasq log tail", ("inst", "dhcp")),
)}


def actions_for(kind: str) -> list[Action]:
    """The actions offered for a namespace of ``kind``, in display order."""
    return [a for a in ACTIONS.values() if kind in a.kinds]


def validate(action: str, args: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    """Return the cleaned arguments of ``action`` for a ``kind`` namespace, or raise :class:`DiagnosticError`."""
    spec = ACTIONS.get(action if isinstance(action, str) else "")
    if spec is None:
        raise DiagnosticError(f"unknown action {action!r}; choose one of: {', '.join(ACTIONS)}")
    if kind not in spec.kinds:
        raise DiagnosticError(f"{spec.label!r} is not available in this namespace")
    args = args if isinstance(args, dict) else {}
    extra = set(args) - ({"target", "count"} if spec.takes_target else set())
    if extra:
        raise DiagnosticError(f"{action} takes no argument {sorted(extra)[0]!r}")
    if not spec.takes_target:
        return {}
    raw = args.get("target")
    try:
        target = ipaddress.ip_address(str(raw).strip()) if raw is not None else None
    except ValueError:
        target = None
    if target is None:
        raise DiagnosticError(f"{raw!r} is not an IP address; enter one such as 192.168.1.2")
    if target.is_multicast or target.is_unspecified:
        raise DiagnosticError(f"{target} is not a single host; ping one address such as 192.168.1.2")
    raw_count = args.get("count", 3)
    digits = isinstance(raw_count, str) and raw_count.strip().isdigit()
    if isinstance(raw_count, bool) or not (isinstance(raw_count, int) or digits):
        raise DiagnosticError(f"count {raw_count!r} is not a whole number; use 1 to {MAX_PING_COUNT}")
    count = int(raw_count)
    if not 1 <= count <= MAX_PING_COUNT:
        raise DiagnosticError(f"count {count} is out of range; use 1 to {MAX_PING_COUNT}")
    return {"target": str(target), "count": count}


def argv(action: str, args: dict[str, Any], *, busybox: str = "/usr/bin/busybox") -> list[str] | None:
    """The command of a command-type action (``None`` for actions the agent performs itself)."""
    if action == "ping":
        target = ipaddress.ip_address(args["target"])  # re-parsed: the argv only ever holds a parsed address
        count = int(args["count"])
        assert 1 <= count <= MAX_PING_COUNT
        return [busybox, "ping", "-c", str(count), "-W", str(PING_WAIT_SECONDS), str(target)]
    if action in ("addr", "route", "neigh"):
        return ["ip", action, "show"]
    return None


# How each DHCP client is asked to renew (tenants.host's LinuxHostDriver.renew_instance): udhcpc renews on
# SIGUSR1; dhcpcd releases on SIGALRM and a fresh one solicits, so a changed reservation is honoured (a plain
# DHCPv6 renew keeps the old address: measured).
RENEW_SHELL = {
    "udhcpc": "ip netns exec {ns} kill -USR1 $(cat …/udhcpc.pid)",
    "dhcpcd": "ip netns exec {ns} kill -ALRM $(cat …/run/dhcpcd/*-6.pid)"
              " && ip netns exec {ns} unshare -m … dhcpcd -6 -b …",
}


def shell_equivalent(action: str, args: dict[str, Any], ns: str, *, busybox: str = "/usr/bin/busybox",
                     clients: tuple[str, ...] = ("udhcpc",)) -> str:
    """What a person would type for the same diagnostic (shown above its output); ``clients`` are the DHCP
    clients the instance runs (an IPv6-only one runs dhcpcd alone, a SLAAC-only one none)."""
    cmd = argv(action, args, busybox=busybox)
    if cmd is not None:
        return " ".join(["ip", "netns", "exec", ns, *cmd])
    if action == "renew":
        return " ; ".join(RENEW_SHELL[c].format(ns=ns) for c in clients) or "# SLAAC: no DHCP client to renew"
    return f"tail -n {LOG_TAIL_LINES} …/dnsmasq.log"
