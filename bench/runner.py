"""The measuring child: migrate a throwaway database, start the stack, run every figure, write the results."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from django.core.management import call_command

from . import agents_rows, client_rows, ipv6_rows, multinode_rows, report, supervisor, topology_rows
from .baselines import Baseline
from .product import Product
from .router_rows import RouterRows
from .stack import Stack

FIGURES = ("latency", "client", "realise", "burst", "reconcile", "teardown", "router", "agents")
IPV6_SAMPLES = 10


def _meta(options: dict[str, Any]) -> dict[str, Any]:
    def out(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
        except OSError:
            return ""

    return {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "dnsmasq": (out(["/usr/sbin/dnsmasq", "--version"]).splitlines() or [""])[0],
        "commit": out(["git", "-C", str(supervisor.ROOT), "rev-parse", "--short", "HEAD"]),
        "loadavg_start": os.getloadavg(),
        "options": {k: options[k] for k in ("sizes", "latency_n", "burst", "reconcile_instances", "agents",
                                            "baselines", "figures", "router_n", "client_n")},
    }


STEPS: list[tuple[str, float]] = []  # (label, monotonic start) of each step: where the bench's own time goes


def _step(label: str) -> None:
    STEPS.append((label, time.monotonic()))
    print(f"bench: {label}", flush=True)


def _step_seconds(end: float) -> list[tuple[str, float]]:
    """Each step's wall time, set-up and teardown included (the JSON's ``meta.steps``)."""
    ends = [t for _, t in STEPS[1:]] + [end]
    return [(label, round(stop - start, 1)) for (label, start), stop in zip(STEPS, ends, strict=True)]


def run(options: dict[str, Any]) -> int:
    run_dir = Path(os.environ[supervisor.RUN_MARKER])
    call_command("migrate", verbosity=0, interactive=False)
    figures = options["figures"]
    contenders = options["baselines"]
    ds = supervisor.drivers(run_dir)
    started = time.monotonic()
    results: dict[str, Any] = {"meta": _meta(options)}
    for key in FIGURES:
        results.setdefault(key, {})
    stack = Stack(run_dir, agents=options["agents"])
    code = 0
    try:
        results["meta"]["agent_startup_s"] = stack.start_agents()
        if "topology" in figures:  # the page needs its static files, which daphne's whitenoise reads at start
            call_command("collectstatic", "--noinput", verbosity=0)
        stack.start_daphne()
        product = Product(stack)
        base = {k: Baseline(k, ds[k], run_dir) for k in contenders}

        if "latency" in figures:
            n = options["latency_n"]
            _step(f"1. create → lease → event, n={n}")
            results["latency"]["netdash"] = product.latency(n)
            for k, b in base.items():
                results["latency"][k] = b.latency(n)
        if "client" in figures:  # the floor's own network and instance: no netdash code runs
            k = options["client_n"]
            _step(f"9. IPv4 DHCP client alone: udhcpc, dhcpcd, dhcpcd with rapid commit, n={k} each")
            results["client"] = client_rows.measure(ds["floor"], k)
            print(client_rows.table(results["client"]))
        if "ipv6" in figures:  # opt-in (--figures …,ipv6): SLAAC with default sysctls takes ~3.5 s a sample
            _step("ipv6. create → v6 address usable, per mode, default and fast sysctls")
            results["ipv6"] = ipv6_rows.measure(ds, run_dir, IPV6_SAMPLES)
            print(ipv6_rows.table(results["ipv6"]))
        if "multinode" in figures:  # opt-in (--figures …,multinode): two simulated nodes on one fabric
            _step("multinode. create → lease, instance on the DHCP server's node and across VXLAN")
            results["multinode"] = multinode_rows.measure(ds)
            print(multinode_rows.table(results["multinode"]))
        if "topology" in figures:  # opt-in (--figures …,topology): rows only, a Chromium page per sample
            _step(f"topology. snapshot build and first draw, {topology_rows.NETWORKS} networks / "
                  f"{topology_rows.INSTANCES} instances")
            results["topology"] = topology_rows.measure(f"http://127.0.0.1:{stack.daphne_port}")
            print(topology_rows.table(results["topology"]))
        if "burst" in figures:
            for m in options["burst"]:
                _step(f"3. burst of {m} instances on one network")
                results["burst"][str(m)] = {"netdash_each": product.burst(m, bulk=False), "netdash": product.burst(m)}
                for k, b in base.items():
                    results["burst"][str(m)][k] = b.burst(m)
        if "router" in figures:
            k = options["router_n"]
            _step(f"7. routers: realise, floating IP reachable, n={k} (netdash, then by hand)")
            rows = RouterRows(run_dir, ds["shell"])
            results["router"] = {"netdash": rows.netdash(k), "shell": rows.by_hand(k)}
        for n in options["sizes"]:
            k_inst = min(options["reconcile_instances"], n)
            for who in (*contenders, "netdash"):
                _step(f"2/4/5/6. N={n}: {who}")
                if who == "netdash":
                    # One service call per network first (measured, then torn down), then the bulk create
                    # whose networks the reconcile and teardown figures use.
                    each = product.realise(n, bulk=False)
                    results["realise"].setdefault(str(n), {})["netdash_each"] = each
                    product.teardown(each["tenant"])
                    real = product.realise(n)
                    results["realise"].setdefault(str(n), {})["netdash"] = real
                    if "reconcile" in figures:
                        product.add_instances(real["tenant"], k_inst - 1)  # plus the probe
                        results["reconcile"].setdefault(str(n), {})["netdash"] = product.reconcile(real["tenant"])
                    results["teardown"].setdefault(str(n), {})["netdash"] = product.teardown(real["tenant"])
                else:
                    b = base[who]
                    results["realise"].setdefault(str(n), {})[who] = b.realise(n)
                    if "reconcile" in figures:
                        results["reconcile"].setdefault(str(n), {})[who] = b.reconcile(n, k_inst)
                    results["teardown"].setdefault(str(n), {})[who] = b.teardown(n)
        if "agents" in figures:  # last: it stops the bench's own agent and runs two simulated nodes' agents
            n = max(options["sizes"])
            _step(f"8. realise N={n}: one agent, then two agents on two simulated nodes ({agents_rows.LABEL})")
            results["agents"] = agents_rows.measure(stack, ds, n)
            print(agents_rows.table(results["agents"]))
    except BaseException as exc:
        traceback.print_exc()
        results["error"] = f"{type(exc).__name__}: {exc}"
        code = 130 if isinstance(exc, KeyboardInterrupt) else 1
    finally:
        stack.stop()
        results["meta"]["loadavg_end"] = os.getloadavg()
        results["meta"]["wall_s"] = time.monotonic() - started  # the measurements; the supervisor's set-up aside
        results["meta"]["steps"] = _step_seconds(time.monotonic())
        results["goals"] = report.goals(results)
        print()
        print(report.table(results))
        print()
        print("goals:")
        print(report.goals_text(results["goals"]))
        json_path = Path(options["json"]) if options["json"] else None
        if json_path is not None:
            report.write_json(results, json_path)
            json_path.with_suffix(".md").write_text(report.markdown(results))
            png = Path(options["plot"]) if options["plot"] else json_path.with_suffix(".png")
            try:
                report.plot(results, png)
                print(f"\nbench: wrote {json_path} and {png}")
            except Exception as exc:  # the numbers matter more than the picture
                print(f"bench: plot failed: {exc}", file=sys.stderr)
        time.sleep(0)
    return code
