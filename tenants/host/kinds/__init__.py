"""One module per kind of kernel object: each plans its operations (:mod:`..ops`), knows its daemon (if any,
supervised by :mod:`..process`), removes what it made and reports what a scan found of it.

* :mod:`.segment` — the network's L2 segment: namespace ``seg-N`` with bridge ``bN``;
* :mod:`.dhcp` — the network's DHCP side: namespace ``qdhcp-N``, veth into the bridge, dnsmasq;
* :mod:`.instance` — an instance: namespace ``inst-I``, veth on the bridge with its MAC, udhcpc;
* :mod:`.router` — a router: namespace ``qrouter-R``, veths ``rP``/``gR`` into the bridges, its NAT as one
  nftables table (:mod:`..nft`) replaced atomically;
* :mod:`.upstream` — the simulated outside world on an external network: namespace ``upstream-N``, a TEST-NET
  address, no routes, the echo service (:mod:`..echo_peer`);
* :mod:`.overlay` — several nodes: the shared fabric ``fabric-F``, a node's underlay ``ul-N`` holding its VTEP,
  and a network's VXLAN port ``xNET`` with its flood list: a VXLAN device created in the node's underlay
  namespace straight into the segment namespace (its UDP socket stays in the underlay, never in the root
  namespace), a ``VxlanAdd`` op, and ``bridge fdb`` entries reconciled from the database.

:class:`..driver.LinuxHostDriver` composes them. A new kind touches: a module here (plan, remove, scan), its
names in :mod:`..naming`, its ops in :mod:`..ops` if netlink gives no
existing one, its spec in :mod:`..specs`, its found-state in :mod:`..interface`, and the driver's ensure /
remove / ``scan_host`` calls, as the router did (``kinds/router.py``, ``RouterSpec``, the ``NftApply`` op) and
the overlay (``kinds/overlay.py``, ``UnderlaySpec``/``TunnelSpec``, ``VxlanAdd``/``FloodList``).
"""
