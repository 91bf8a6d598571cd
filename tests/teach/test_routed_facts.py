"""The routed lab's findings and the router inspector's parsers, on fixed input (no kernel): a fact appears only
when what was observed establishes it."""

from __future__ import annotations

from teach.routed_lab import Observation, facts
from tenants.host.inspect import flows, nat_rules

UP = "203.0.113.1"


def _side(slug: str, external: str, seen: str, replies: list[str]) -> Observation:
    return Observation(slug, "192.168.1.3", f"{slug}-router", external, seen,
                       [{"reply_dst": r} for r in replies])


def test_facts_need_the_observation_that_establishes_them():
    good = facts([_side("a", "203.0.113.2", "203.0.113.2", ["203.0.113.2"]),
                  _side("b", "203.0.113.3", "203.0.113.3", ["203.0.113.3"])], UP, 7007)
    assert set(good) == {"reached:a", "reached:b", "different_sources", "same_inside", "own_flows:a", "own_flows:b"}
    # The upstream saw one source for both (no per-tenant SNAT), b unreachable, a's router tracks b's replies.
    bad = facts([_side("a", "203.0.113.2", "203.0.113.9", ["203.0.113.3"]),
                 _side("b", "203.0.113.3", "", [])], UP, 7007)
    assert set(bad) == {"reached:a", "unreached:b", "same_inside"}
    same = facts([_side("a", "203.0.113.2", "203.0.113.9", []), _side("b", "203.0.113.3", "203.0.113.9", [])],
                 UP, 7007)
    assert "different_sources" not in same


def test_parsers_read_nft_counters_and_conntrack_tuples():
    listed = ("table ip netdash {\n\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; "
              "policy accept;\n\t\toifname \"g1\" ip saddr 192.168.1.0/24 counter packets 3 bytes 180 snat to "
              "203.0.113.2\n\t}\n}\n")
    (rule,) = nat_rules(listed)
    assert (rule.chain, rule.packets, rule.bytes) == ("postrouting", 3, 180)
    assert rule.rule == 'oifname "g1" ip saddr 192.168.1.0/24 counter snat to 203.0.113.2'
    (flow,) = flows(["tcp      6 117 TIME_WAIT src=192.168.1.3 dst=203.0.113.1 sport=40000 dport=7007 "
                     "src=203.0.113.1 dst=203.0.113.2 sport=7007 dport=40000 [ASSURED] mark=0 use=1"])
    assert (flow.proto, flow.state, flow.src, flow.dport, flow.reply_dst) == (
        "tcp", "TIME_WAIT", "192.168.1.3", "7007", "203.0.113.2")
