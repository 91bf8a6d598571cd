"""``manage.py bench``: measure netdash on the real stack next to a shell baseline and a netlink floor (issue 7).

The command supervises: it makes a private run directory and Redis, then re-runs itself (``--child``) with its
own prefix (``b<tag>n-``, baselines ``b<tag>f-``/``b<tag>s-``, two random letters per run), state dir, SQLite
database and channel prefix, so a running ``make run`` or another bench is never touched; afterwards it removes
everything with those prefixes. See ``bench/``.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError


def _sizes(text: str, flag: str = "--sizes") -> list[int]:
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise CommandError(f"{flag} {text!r}: use comma-separated integers, e.g. 50,200,500") from None
    if not sizes or min(sizes) < 1:
        raise CommandError(f"{flag} needs at least one positive size")
    return sizes


class Command(BaseCommand):
    help = ("Benchmark netdash against the real stack (Redis, agent, dnsmasq, kernel, websocket) with a hand-rolled "
            "shell baseline and a netlink floor; prints a table and writes JSON + PNG.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--sizes", default="50,200,500,1000", help="network counts for figures 2, 4, 5, 6")
        parser.add_argument("--latency-n", type=int, default=30, help="sequential samples for figure 1 (≥ 30)")
        parser.add_argument("--burst", default="50,200", help="instances created at once (figure 3), comma list")
        parser.add_argument("--reconcile-instances", type=int, default=500,
                            help="instances spread over the N networks before the simulated reboot")
        parser.add_argument("--agents", type=int, default=1, help="agent processes (make run starts one)")
        parser.add_argument("--baselines", default="floor,shell", help="comma list of floor,shell (or 'none')")
        parser.add_argument("--client-n", type=int, default=10,
                            help="samples per DHCP client of figure 9 (udhcpc, dhcpcd, dhcpcd rapid commit)")
        parser.add_argument("--figures", default="latency,client,realise,burst,reconcile,teardown,router,agents",
                            help="comma list; realise and teardown run always (at each of --sizes); agents: one "
                                 "vs two agents at the largest size, run last")
        parser.add_argument("--router-n", type=int, default=20,
                            help="samples of figure 7 (router realise, floating IP reachable), each side")
        parser.add_argument("--json", help="write the results here (the PNG goes next to it)")
        parser.add_argument("--plot", help="PNG path (default: the JSON path with .png)")
        parser.add_argument("--redis-url", help="use this Redis instead of starting a private one")
        parser.add_argument("--keep", action="store_true", help="keep the run directory (logs, scripts)")
        parser.add_argument("--child", action="store_true", help="internal: run the measurements")

    def handle(self, *args, **options) -> None:
        options["sizes"] = _sizes(options["sizes"])
        options["baselines"] = [b for b in options["baselines"].split(",") if b and b != "none"]
        options["figures"] = [f for f in options["figures"].split(",") if f]
        for b in options["baselines"]:
            if b not in ("floor", "shell"):
                raise CommandError(f"--baselines: unknown {b!r}; use floor, shell or none")
        options["burst"] = _sizes(options["burst"], "--burst")
        if max(options["burst"]) > 250:
            raise CommandError("--burst: at most 250 instances (one /24)")
        if options["child"]:
            from ...runner import run

            sys.exit(run(options))
        from ...supervisor import supervise

        argv = ["--sizes", ",".join(map(str, options["sizes"])), "--latency-n", str(options["latency_n"]),
                "--burst", ",".join(map(str, options["burst"])),
                "--reconcile-instances", str(options["reconcile_instances"]),
                "--agents", str(options["agents"]), "--baselines", ",".join(options["baselines"]) or "none",
                "--figures", ",".join(options["figures"]), "--router-n", str(options["router_n"]),
                "--client-n", str(options["client_n"])]
        for key in ("json", "plot"):
            if options[key]:
                from pathlib import Path

                argv += [f"--{key}", str(Path(options[key]).resolve())]
        code = supervise(argv, redis_url=options["redis_url"], keep=options["keep"])
        if code:
            sys.exit(code)
