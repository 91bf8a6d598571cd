"""Turn the results into a table (stdout), a JSON file and a PNG plot; check the issue's goals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MS = 1000.0


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a and b else "-"


def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "ms":
        return f"{v * MS:.0f} ms"
    if unit == "s":
        return f"{v:.2f} s"
    if unit == "/s":
        return f"{v:.0f}/s"
    if unit == "MB":
        return f"{v / 1024:.2f} MB"
    if unit == "x":
        return f"{v:.2f}x"
    return f"{v}"


WHO = ("netdash", "floor", "shell")


def rows(r: dict[str, Any]) -> list[tuple[str, str, float | None, float | None, float | None]]:
    """(figure, unit, netdash, floor, shell) — lower is better for every unit except ``/s``."""
    out: list[tuple[str, str, float | None, float | None, float | None]] = []
    lat = r.get("latency")
    if lat:
        nd, fl, sh = lat.get("netdash", {}), lat.get("floor", {}), lat.get("shell", {})
        base_fl, base_sh = fl.get("lease_in_namespace", {}), sh.get("lease_in_namespace", {})
        for key, label in (("lease_in_namespace", "lease in namespace"), ("lease_row", "Lease row"),
                           ("lease_event", "lease event at websocket")):
            for stat in ("median", "p95"):
                out.append((f"1. create→{label} {stat}", "ms", nd.get(key, {}).get(stat),
                            base_fl.get(stat), base_sh.get(stat)))
    for n, x in sorted(r.get("realise", {}).items(), key=lambda kv: int(kv[0])):
        out.append((f"2. realise {n} networks (one bulk call)", "s", *(x.get(c, {}).get("wall") for c in WHO)))
        each = x.get("netdash_each", {}).get("wall")
        if each is not None:
            out.append((f"2. realise {n}: one call per network", "s", each, x.get("floor", {}).get("wall"),
                        x.get("shell", {}).get("wall")))
        out.append((f"2. realise {n}: networks/s", "/s",
                    *(x.get(c, {}).get("per_second") for c in WHO)))
        drained = x.get("netdash", {}).get("queue_drained")
        if drained is not None:  # the batched networks' own jobs, each finding its network up
            out.append((f"2. realise {n}: agent queue drained", "s", drained, None, None))
    for m, x in sorted(r.get("burst", {}).items(), key=lambda kv: int(kv[0])):
        out.append((f"3. burst {m} instances, all leased (one bulk call)", "s",
                    *(x.get(c, {}).get("wall") for c in WHO)))
        each = x.get("netdash_each", {}).get("wall")
        if each is not None:
            out.append((f"3. burst {m}: one call per instance", "s", each, x.get("floor", {}).get("wall"),
                        x.get("shell", {}).get("wall")))
    for n, x in sorted(r.get("reconcile", {}).items(), key=lambda kv: int(kv[0])):
        k = x.get("netdash", {}).get("instances", "?")
        out.append((f"4. reconcile {n} nets + {k} inst after reboot", "s",
                    *(x.get(c, {}).get("wall") for c in WHO)))
    for n, x in sorted(r.get("teardown", {}).items(), key=lambda kv: int(kv[0])):
        out.append((f"5. teardown {n} networks", "s", *(x.get(c, {}).get("wall") for c in WHO)))
    for n, x in sorted(r.get("realise", {}).items(), key=lambda kv: int(kv[0])):
        mem = {c: x.get(c, {}).get("memory", {}) for c in WHO}
        out.append((f"6. dnsmasq PSS per network (N={n})", "MB",
                    *(mem[c].get("dnsmasq_pss_kb_per_network") for c in WHO)))
        out.append((f"6. MemAvailable drop per network (N={n})", "MB",
                    *(mem[c].get("mem_available_drop_kb_per_network") for c in WHO)))
        if "agent_rss_kb" in mem["netdash"]:
            out.append((f"6. agent RSS at N={n}", "MB", mem["netdash"]["agent_rss_kb"], None, None))
            out.append((f"6. agent PSS per network (N={n})", "MB", mem["netdash"]["agent_pss_kb"] / int(n),
                        None, None))
    x = r.get("router") or {}  # bench/router_rows.py: by hand (ip/nft) in the shell column
    for key, label in (("realise", "router realise (2 subnets + gateway)"),
                       ("fip_reachable", "FIP associate→reachable upstream")):
        for stat in ("median", "p95"):
            out.append((f"7. {label} {stat}", "ms", x.get("netdash", {}).get(key, {}).get(stat), None,
                        x.get("shell", {}).get(key, {}).get(stat)))
    a = r.get("agents") or {}  # bench/agents_rows.py: the floor's and shell's realise at the same N beside it
    if a.get("one") and a.get("two"):
        n, base = a["n"], r.get("realise", {}).get(str(a["n"]), {})
        fl, sh = base.get("floor", {}).get("wall"), base.get("shell", {}).get("wall")
        out.append((f"8. realise {n}, one agent (1 DHCP server/net)", "s", a["one"]["wall"], fl, sh))
        out.append((f"8. realise {n}, two agents on two nodes (same)", "s", a["two"]["wall"], fl, sh))
        out.append((f"8. realise {n}: two agents / one agent", "x", a["ratio"], None, None))
    return out


def table(r: dict[str, Any]) -> str:
    lines = [f"{'figure':<46} {'netdash':>10} {'floor':>10} {'shell':>10} {'nd/floor':>9} {'nd/shell':>9}"]
    lines.append("-" * len(lines[0]))
    for name, unit, nd, fl, sh in rows(r):
        if unit == "/s":  # throughput: ratio of times, so > 1 still means "netdash is slower"
            rf, rs = _ratio(fl, nd), _ratio(sh, nd)
        else:
            rf, rs = _ratio(nd, fl), _ratio(nd, sh)
        lines.append(f"{name:<46} {_fmt(nd, unit):>10} {_fmt(fl, unit):>10} {_fmt(sh, unit):>10} {rf:>9} {rs:>9}")
    return "\n".join(lines)


def _wall(r: dict[str, Any], figure: str, size: str, who: str) -> float | None:
    return r.get(figure, {}).get(size, {}).get(who, {}).get("wall")


def goals(r: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 16's goals, each with the measured value and whether it is met (None: not measured at the size the
    goal names; the value at the largest size run is shown instead). Ratios are within this run."""
    out: list[dict[str, Any]] = []

    def add(goal: str, value: str, met: bool | None) -> None:
        out.append({"goal": goal, "measured": value, "met": met})

    def x(a: float | None, b: float | None) -> float | None:
        return a / b if a and b else None

    sizes = sorted(int(n) for n in r.get("realise", {}))
    big = str(sizes[-1]) if sizes else None
    full = bool(sizes) and sizes[-1] >= 500
    note = "" if full else f" (largest N run: {big})"

    def judge(ok: bool) -> bool | None:
        return ok if full else None

    if big is not None:
        td, tf, ts = (_wall(r, "teardown", big, w) for w in WHO)
        if x(td, tf) is not None and ts:
            add("teardown ≤ 3× the floor and faster than the shell",
                f"{td:.2f} s = {td / tf:.2f}× floor, {td / ts:.2f}× shell at N={big}{note}",
                judge(td <= 3 * tf and td < ts))
        rd, rf = _wall(r, "realise", big, "netdash"), _wall(r, "realise", big, "floor")
        if x(rd, rf) is not None:
            each = _wall(r, "realise", big, "netdash_each")
            alt = f"; one call per network {each / rf:.2f}×" if each else ""
            add("realise ≤ 1.5× the floor", f"bulk {rd / rf:.2f}× ({rd:.2f} s vs {rf:.2f} s){alt} at N={big}{note}",
                judge(rd <= 1.5 * rf))
        cd, cf = _wall(r, "reconcile", big, "netdash"), _wall(r, "reconcile", big, "floor")
        if x(cd, cf) is not None:
            add("reconcile after reboot ≤ 1.1× the floor",
                f"{cd / cf:.2f}× ({cd:.2f} s vs {cf:.2f} s) at N={big}{note}", judge(cd <= 1.1 * cf))
        if len(sizes) > 1:
            small = str(sizes[0])
            walls = {n: _wall(r, "realise", n, "netdash") for n in (small, big)}
            per = {n: w / int(n) for n, w in walls.items() if w}
            if len(per) == 2:
                growth = per[big] / per[small]
                add("cost per network flat: at the largest N within 1.2× of the smallest",
                    f"{per[small] * MS:.0f} → {per[big] * MS:.0f} ms per network ({growth:.2f}×, N={small}→{big})",
                    judge(growth <= 1.2))
        mem = r["realise"][big].get("netdash", {}).get("memory", {})
        if mem:
            agent = mem.get("agent_pss_kb", 0) / int(big) / 1024
            pss = mem["dnsmasq_pss_kb_per_network"] / 1024
            add("memory ≤ 1.5 MB per network incl. the agent's share",
                f"dnsmasq PSS {pss:.2f} + agent PSS {agent:.2f} MB, agent RSS "
                f"{mem.get('agent_rss_kb', 0) / 1024:.0f} MB at N={big}{note}", judge(pss + agent <= 1.5))
    a = r.get("agents") or {}
    if a.get("ratio"):
        add("two agents on two nodes realise ≤ 0.7× the time of one agent",
            f"{a['ratio']:.2f}× ({a['two']['wall']:.2f} s vs {a['one']['wall']:.2f} s) at N={a['n']}, one DHCP "
            "server per network", a["ratio"] <= 0.7 if a["n"] >= 500 else None)
    for m in sorted(r.get("burst", {}), key=int):
        bd, bf = _wall(r, "burst", m, "netdash"), _wall(r, "burst", m, "floor")
        if x(bd, bf) is not None:
            each = _wall(r, "burst", m, "netdash_each")
            alt = f"; one call per instance {each / bf:.2f}×" if each else ""
            add("burst of instances ≤ 1.5× the floor", f"bulk {bd / bf:.2f}× ({bd:.2f} s vs {bf:.2f} s){alt} at M={m}",
                bd <= 1.5 * bf if int(m) >= 50 else None)
    lat = r.get("latency", {})
    ev = lat.get("netdash", {}).get("lease_event", {}).get("median")
    fl = lat.get("floor", {}).get("lease_in_namespace", {}).get("median")
    if ev and fl:
        add("create → lease event at a websocket p50 ≤ 1.1× the DHCP-client floor",
            f"{ev / fl:.2f}× ({ev * MS:.0f} ms vs {fl * MS:.0f} ms)", ev <= 1.1 * fl)
    return out


def markdown(r: dict[str, Any]) -> str:
    """The table and the goals as Markdown (written next to the JSON: what the README's Benchmark section shows)."""
    meta = r.get("meta", {})
    head = [f"Run: commit {meta.get('commit', '?')}, {meta.get('started', '?')}, {meta.get('cpus', '?')} CPUs, "
            f"load average {_load(meta.get('loadavg_start'))} at the start, {_load(meta.get('loadavg_end'))} at "
            "the end" + (f"; measurements took {meta['wall_s'] / 60:.1f} min." if meta.get("wall_s") else "."), "",
            "| figure | netdash | floor | shell | nd/floor | nd/shell |", "|---|---|---|---|---|---|"]
    for name, unit, nd, fl, sh in rows(r):
        if all(v is None for v in (nd, fl, sh)):
            continue
        rf, rs = (_ratio(fl, nd), _ratio(sh, nd)) if unit == "/s" else (_ratio(nd, fl), _ratio(nd, sh))
        head.append(f"| {name} | {_fmt(nd, unit)} | {_fmt(fl, unit)} | {_fmt(sh, unit)} | {rf} | {rs} |")
    steps = sorted(meta.get("steps", []), key=lambda st: -st[1])
    if steps:
        head += ["", "Where the bench's time went (each step with its set-up and teardown): " + "; ".join(
            f"{label} {seconds:.0f} s" for label, seconds in steps) + "."]
    mark = {True: "**met**", False: "**missed**", None: "not judged"}
    head += ["", "Goals:", ""] + [f"- {mark[g['met']]} — {g['goal']}: {g['measured']}" for g in r.get("goals", [])]
    return "\n".join(head) + "\n"


def _load(value: Any) -> str:
    return " / ".join(f"{x:.1f}" for x in value) if value else "?"


def goals_text(gs: list[dict[str, Any]]) -> str:
    mark = {True: "MET   ", False: "MISSED", None: "n/a   "}
    return "\n".join(f"  {mark[g['met']]} {g['goal']}: {g['measured']}" for g in gs)


def write_json(r: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(r, indent=2, sort_keys=True, default=str) + "\n")


def _label(ax: Any, xlabel: str, ylabel: str, title: str, *, legend: int = 8) -> None:
    """Axis labels, title, legend (font size ``legend``) and a light grid: every panel of the plot looks alike."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=legend)
    ax.grid(alpha=0.3)


def plot(r: dict[str, Any], path: Path) -> None:
    """Latency distributions (figure 1) and throughput / wall time vs N (figures 2, 4, 5)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(20, 4.8))
    ax = axes[0]
    lat = r.get("latency", {})
    series = []
    for who, key, label in (("netdash", "lease_in_namespace", "netdash: lease in ns"),
                            ("netdash", "lease_row", "netdash: Lease row"),
                            ("netdash", "lease_event", "netdash: websocket event"),
                            ("floor", "lease_in_namespace", "floor"), ("shell", "lease_in_namespace", "shell")):
        vals = lat.get(who, {}).get(key, {}).get("values")
        if vals:
            series.append((label, sorted(v * MS for v in vals)))
    for label, vals in series:
        ax.plot(vals, [(i + 1) / len(vals) for i in range(len(vals))], marker=".", label=label)
    ax.axvline(80, color="grey", linestyle=":", label="goal 80 ms")
    _label(ax, "create → lease (ms)", "fraction of samples", "1. create → lease latency (CDF)")

    ax = axes[1]
    sizes = sorted(int(n) for n in r.get("realise", {}))
    # Cost per network: flat lines mean nothing grows with N (the goal: at 1,000 within 1.2x of 50).
    for fig_key, style in (("realise", "o-"), ("teardown", "^--")):
        for who in ("netdash", "netdash_each", "floor", "shell"):
            xs = [n for n in sizes if r.get(fig_key, {}).get(str(n), {}).get(who)]
            ys = [r[fig_key][str(n)][who]["wall"] * MS / n for n in xs]
            if xs:
                how = {"netdash": " (one bulk call)", "netdash_each": " (one call each)"}.get(who, "") if (
                    fig_key == "realise") else ""
                ax.plot(xs, ys, style, label=f"{who.removesuffix('_each')}{how}: {fig_key}")
    _label(ax, "networks at once (N)", "ms per network", "2/5. time per network vs N (flat = scales)", legend=7)

    ax = axes[2]
    for fig_key, label, style in (("realise", "realise", "o-"), ("reconcile", "reconcile after reboot", "s-"),
                                  ("teardown", "teardown", "^-")):
        for who, alpha in (("netdash", 1.0), ("shell", 0.4)):
            xs = [n for n in sizes if r.get(fig_key, {}).get(str(n), {}).get(who)]
            ys = [r[fig_key][str(n)][who]["wall"] for n in xs]
            if xs:
                ax.plot(xs, ys, style, alpha=alpha, label=f"{who}: {label}")
    _label(ax, "networks (N)", "wall time (s)", "2/4/5. wall time vs N", legend=7)

    ax = axes[3]
    a = r.get("agents") or {}
    if a.get("one") and a.get("two"):
        walls = [a["one"]["wall"], a["two"]["wall"]]
        ax.bar(["one agent", "two agents\n(two nodes)"], walls, color=["tab:blue", "tab:orange"],
               label=f"two/one = {a['ratio']:.2f}x")
        ax.axhline(0.7 * walls[0], color="grey", linestyle=":", label="goal 0.7x one agent")
    _label(ax, "", "wall time (s)", f"8. realise {a.get('n', '?')} networks, 1 DHCP server/net", legend=7)
    meta = r.get("meta", {})
    fig.suptitle(f"netdash bench — {meta.get('cpus', '?')} CPUs, kernel {meta.get('kernel', '?')}, "
                 f"{meta.get('started', '')}", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
