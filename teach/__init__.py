"""Teaching tools (issue 6): namespace inspector + compare mode, equivalent commands, the overlapping-IPs lab,
browser diagnostics and the (opt-in, superuser-only) namespace shell.

Layers, as everywhere in netdash: views/consumers (thin) → ``teach.targets`` (tenant scoping via
``tenants.selectors``) and ``teach.services`` → agent jobs in ``teach.jobs`` (run by the host agent, as root) →
host-side code (``tenants.host`` and ``teach.hostside``, no Django). The web process never reads kernel state or
spawns anything; the only host-derived thing it computes is the command transcript, from the driver's *pure*
planning functions (see ``teach.selectors``).
"""
