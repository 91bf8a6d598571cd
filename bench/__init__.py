"""``manage.py bench``: netdash against the real stack, next to a hand-rolled shell baseline and a netlink floor.

Layout (one job per module):

* ``supervisor`` — private run directory, Redis, environment; re-runs the command as a child with that
  environment and always cleans up (kernel objects by prefix, processes by the pids it recorded).
* ``stack``      — the processes the product really runs: ``manage.py agent`` and daphne; a websocket client.
* ``product``    — the six measurements through the services (the same calls the pages and API make).
* ``floor``      — the same kernel steps done directly: netlink in one process, no app, no queue.
* ``shell``      — the seed's way: a bash script of ``ip`` / ``ip netns exec dnsmasq`` / ``udhcpc``.
* ``report``     — table, ratios, JSON and the PNG plot.
* ``management/commands`` — ``manage.py bench`` (the above) and ``manage.py bench_live`` (the live view's
  event latency and topology render time). Nothing in the product imports this app (``lint-imports``).
"""
