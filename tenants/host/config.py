"""Configuration of the host driver: passed in explicitly, never read from globals."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import HostInputError

# Short enough that "{prefix}" + one kind letter + an 8-hex kernel id fits IFNAMSIZ-1 (15).
PREFIX_RE = re.compile(r"[a-z][a-z0-9]{0,4}-?")
PREFIX_MAX = 6


@dataclass(frozen=True)
class HostConfig:
    """Where and under which name prefix the driver creates kernel objects.

    ``prefix`` namespaces everything we own (namespaces, devices, state dirs), so several
    installations or test runs can share one host and each can find and remove only its own.
    """

    prefix: str
    state_dir: Path
    dnsmasq: str = "/usr/sbin/dnsmasq"
    busybox: str = "/usr/bin/busybox"
    # Instances solicit routers at once and skip DAD: SLAAC in ~16 ms instead of ~3.5 s (research §2.3). Off by
    # default, for realism; MACs are unique per network, so EUI-64 addresses cannot collide either way.
    fast_ipv6: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.prefix, str) or len(self.prefix) > PREFIX_MAX or not PREFIX_RE.fullmatch(
            self.prefix
        ):
            raise HostInputError(
                f"prefix {self.prefix!r} is invalid: use 1-{PREFIX_MAX} characters, a lowercase "
                "letter then lowercase letters/digits, optionally ending in '-' (e.g. 'nd-')"
            )
        object.__setattr__(self, "state_dir", Path(self.state_dir))
        if not self.state_dir.is_absolute():
            raise HostInputError(f"state_dir {self.state_dir} must be an absolute path")
