"""One module per kind of kernel object: each plans its operations (:mod:`..ops`), knows its daemon (if any,
supervised by :mod:`..process`), removes what it made and reports what a scan found of it.

* :mod:`.segment` — the network's L2 segment: namespace ``seg-N`` with bridge ``bN``;
* :mod:`.dhcp` — the network's DHCP side: namespace ``qdhcp-N``, veth into the bridge, dnsmasq;
* :mod:`.instance` — an instance: namespace ``inst-I``, veth on the bridge with its MAC, udhcpc;
* :mod:`.overlay` — several nodes: the shared fabric ``fabric-F``, a node's underlay ``ul-N`` holding its VTEP,
  and a network's VXLAN port ``xNET`` with its flood list (built as the example below describes).

:class:`..driver.LinuxHostDriver` composes them. A new kind touches: a module here (plan, remove, scan), its
names in :mod:`..naming` (already reserved for the two below), its ops in :mod:`..ops` if netlink gives no
existing one, its spec in :mod:`..specs`, its found-state in :mod:`..interface`, and the driver's ensure /
remove / ``scan_host`` calls. For example:

* a router — ``qrouter-R`` with ports ``rX``/``gR`` and an nftables rule set rendered from a frozen description
  and applied atomically (``nft -f``): ``kinds/router.py``, a ``RouterSpec``, an ``NftApply`` op;
* an overlay tunnel — a VXLAN device ``xN`` created in the node's underlay namespace ``ul-…`` and moved into the
  segment namespace (its UDP socket stays in the underlay, never in the root namespace): ``kinds/overlay.py``,
  a ``VxlanAdd`` op, and ``bridge fdb`` entries reconciled from the database.
"""
