"""Typed errors of the host driver.

The jobs layer records ``str(exc)`` as the reason a network or instance failed, so every
message must read well on its own ("dnsmasq not installed at /usr/sbin/dnsmasq").
"""

from __future__ import annotations


class HostError(Exception):
    """Something on the host (kernel, dnsmasq, udhcpc) did not do what we asked."""


class HostInputError(HostError, ValueError):
    """A value given to the driver is unsafe or malformed; nothing was written.

    Subclasses ``ValueError`` too, so callers that validate with ``except ValueError``
    catch it without knowing about the host layer.
    """
