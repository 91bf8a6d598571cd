"""The failover lab end to end (issues #13, #17): three agent processes (n1, n2 DHCP; n3 compute), daphne and
Chromium. A learner (not staff) starts the lab; its instance on n3 leases across the VXLAN from n1 or n2; the
learner fails the server that leased: the database marks it failed, its node SIGKILLs that dnsmasq (and nothing
restarts it), the client is nudged once and renews from the survivor on the other node with the same address and
no deconfig — and the page shows it live, without a reload. Restore brings the dnsmasq back; ending the lab removes
everything on every node; the root namespace is unchanged (``cluster``'s teardown)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import Client
from faults_helpers import wait_for
from test_three_node_agents import assert_root_clean, cluster, node_driver  # noqa: F401

from teach.models import Classroom, Lab
from tenants.host import netns
from tenants.models import DhcpServer, Instance, Network, Tenant
from tenants.testing import launch_chromium, serve_daphne

pytestmark = [pytest.mark.host, pytest.mark.browser]

ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", Path(__file__).resolve().parents[2] / "artifacts"))
RECONCILE_SECONDS = 3  # the DHCP nodes reconcile often: a failed server must stay down through several passes


def _wait_step(page, step: str, timeout_s: int = 120) -> None:
    """Wait for the page to check ``step`` off; on timeout say what the page showed (facts, steps, node table)."""
    try:
        page.wait_for_selector(f"[data-step='{step}'][data-done='1']", timeout=timeout_s * 1000)
    except Exception:
        shown = page.evaluate("() => [document.querySelector('#lab-notice').innerText, "
                              "document.querySelector('.lab-steps').outerHTML, "
                              "document.querySelector('#failover-nodes').innerText]")
        pytest.fail(f"step {step!r} not checked off in {timeout_s} s; the page shows:\n" + "\n".join(shown))


def _node_namespaces(network: Network) -> list[str]:
    """Every namespace of the lab's network or instance on any node."""
    kid = network.kernel_id
    out = []
    for node in ("n1", "n2", "n3"):
        n = node_driver(node).names
        out += [ns for ns in (n.seg_ns(kid), n.dhcp_ns(kid)) if netns.exists(ns)]
        out += [ns for ns in netns.list_names() if ns.startswith(n.prefix + "inst-")]
    return out


@pytest.mark.timeout(420)
def test_a_learner_fails_the_leasing_server_and_sees_the_client_renew_from_the_survivor(
        cluster, user_factory, monkeypatch, tmp_path, report):  # noqa: F811 - the fixture imported above
    for node in ("n1", "n2"):
        cluster.start(node, roles="dhcp", reconcile_seconds=RECONCILE_SECONDS)
    cluster.start("n3", roles="compute")
    classroom = Classroom.objects.create(name="net104", labs_enabled=True)
    learner = user_factory(username="learner")
    classroom.learners.add(learner)
    assert not learner.is_staff and not learner.is_superuser
    call_command("collectstatic", "--noinput", verbosity=0)
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API keeps a loop on this thread

    from playwright.sync_api import sync_playwright

    with (serve_daphne(connection.settings_dict["NAME"], tmp_path / "daphne.log") as (base, _proc),
          sync_playwright() as p):
        browser = launch_chromium(p)
        try:
            web = Client()
            web.force_login(learner)
            context = browser.new_context(viewport={"width": 1300, "height": 1000})
            context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "url": base,
                                  "value": web.cookies[settings.SESSION_COOKIE_NAME].value}])
            page = context.new_page()
            page.goto(base + "/teach/lab/")
            page.click("#lab-start-failover")  # a form post: the one navigation, to the lab's page
            page.wait_for_selector("[data-step='built']")
            lab = Lab.objects.get(learner=learner)
            network = Network.objects.get(tenant__labs=lab)
            instance = Instance.objects.get(network=network)
            servers = {s.node: s for s in DhcpServer.objects.filter(network=network).prefetch_related("addresses")}
            assert sorted(servers) == ["n1", "n2"] and instance.node == "n3"
            address = {node: network.subnets.get().dhcp_address if s.rank == 0 else s.addresses.get().address
                       for node, s in servers.items()}
            page.evaluate("() => { window.labPageMarker = 'same page'; }")  # gone if anything reloads the page

            for step in ("built", "segment", "leased", "learned"):
                _wait_step(page, step)
            client = node_driver("n3")
            first = client.instance_lease(instance.kernel_id)
            instance.refresh_from_db()
            assert first is not None and str(first.ip) == instance.ip_address
            leased_by = next(node for node, a in address.items() if a == str(first.server_id))
            survivor = next(node for node in servers if node != leased_by)
            facts = page.inner_text("[data-notice-facts]")
            assert f"ACKed by {address[leased_by]} — the server on {leased_by}, across the VXLAN from n3" in facts
            assert_root_clean()

            clicked = time.monotonic()
            page.click("#lab-fail")

            def survivor_acked() -> bool:
                held = client.instance_lease(instance.kernel_id)
                return held is not None and str(held.server_id) == address[survivor]

            kernel_s = wait_for(survivor_acked, 60, interval=0.05)
            assert kernel_s is not None, "the client did not renew from the survivor"
            _wait_step(page, "renewed", 90)
            page_s = time.monotonic() - clicked
            facts = page.inner_text("[data-notice-facts]")
            assert (f"Renewed from {address[survivor]} on {survivor}, same address {instance.ip_address}: "
                    f"{address[leased_by]} on {leased_by} is down") in facts
            assert "deconfig after the first lease" not in facts
            assert page.evaluate("() => window.labPageMarker") == "same page"
            page.screenshot(path=str(ARTIFACTS / "teach-failover-lab.png"), full_page=True)

            # The kernel agrees: the survivor's ACK on the same address, never a deconfig since the first lease.
            now = client.instance_lease(instance.kernel_id)
            assert str(now.server_id) == address[survivor] and str(now.ip) == instance.ip_address
            events = [e.event for e in client.instance_client_events(instance.kernel_id)]
            assert "deconfig" not in events[events.index("bound"):], events
            assert DhcpServer.objects.get(pk=servers[leased_by].pk).failed_at is not None
            kid = network.kernel_id
            # Several reconciles and monitor passes later the failed server is still down: the DB says so.
            time.sleep(3 * RECONCILE_SECONDS)
            assert node_driver(leased_by).dnsmasq_pid(kid) is None
            assert node_driver(survivor).dnsmasq_pid(kid) is not None

            page.click("#lab-restore")
            _wait_step(page, "restored", 90)
            assert node_driver(leased_by).dnsmasq_pid(kid) is not None
            assert DhcpServer.objects.filter(network=network).exclude(failed_at=None).count() == 0
            assert page.evaluate("() => window.labPageMarker") == "same page"

            report(failed=f"dnsmasq of {leased_by} (SIGKILL) + one SIGUSR1", survivor=survivor,
                   click_to_survivor_ack_s=kernel_s, click_to_page_fact_s=round(page_s, 2))
            tenant_ids = list(lab.tenants.values_list("pk", flat=True))
            page.click("#lab-teardown")
            page.wait_for_selector("#lab-start-failover")
            assert wait_for(lambda: not Tenant.objects.filter(pk__in=tenant_ids).exists(), 90, interval=0.5) \
                is not None, "the lab's tenants stayed"
            assert wait_for(lambda: _node_namespaces(network) == [], 30, interval=0.5) is not None, \
                _node_namespaces(network)
            assert_root_clean()
        finally:
            browser.close()
