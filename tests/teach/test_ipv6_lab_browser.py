"""Real Chromium, daphne and agent: a learner (not staff) starts the three-modes IPv6 lab and, without a reload,
sees each mode's column filled from the kernel — RA flags, addresses with origin, client, lease rows — and the
steps checked off by what the instances really did."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from teach import selectors
from teach.models import Classroom, Lab
from tenants.models import Tenant

ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", Path(__file__).resolve().parents[2] / "artifacts"))

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host, pytest.mark.browser,
              pytest.mark.usefixtures("fast_ipv6")]


def test_a_learner_builds_the_ipv6_lab_and_sees_the_three_modes_live(host_clean, agent_loops, user_factory,
                                                                     browser_page):
    classroom = Classroom.objects.create(name="net106", labs_enabled=True)
    learner = user_factory(username="learner")
    classroom.learners.add(learner)
    assert not learner.is_staff and not learner.is_superuser
    page = browser_page(learner, "/teach/lab/")
    page.click("#lab-start-ipv6")  # a form post: the one navigation, to the lab's page
    page.wait_for_selector("[data-step='built']")
    lab = Lab.objects.get(learner=learner)
    page.evaluate("() => { window.labPageMarker = 'same page'; }")  # gone if anything reloads the page

    page.wait_for_selector("[data-step='built'][data-done='1']", timeout=90000)
    for step in ("ra", "eui64", "dhcpv6", "client"):
        page.wait_for_selector(f"[data-step='{step}'][data-done='1']", timeout=60000)
    slaac, _stateless, stateful = selectors.lab_ipv6_modes(lab)
    col = "[data-v6-mode='{}'] [data-v6='{}']".format
    assert page.inner_text(col("slaac", "ra")).startswith("M=0 O=0")
    assert page.inner_text(col("dhcpv6-stateful", "ra")).startswith("M=1 O=1")
    assert page.inner_text(col("slaac", "client")) == "none"
    assert page.inner_text(col("dhcpv6-stateful", "client")).startswith("dhcpcd: pid ")
    assert stateful.instance.ip_address in page.inner_text(col("dhcpv6-stateful", "leases"))
    addresses = page.inner_text(col("slaac", "addresses"))
    assert f"{slaac.instance.ip_address}/64\tSLAAC" in addresses and "link-local" in addresses
    assert "EUI-64" in page.inner_text(col("slaac", "facts"))
    assert not page.locator(".fact-no").count()
    assert page.evaluate("() => window.labPageMarker") == "same page"
    page.screenshot(path=str(ARTIFACTS / "teach-ipv6-lab.png"), full_page=True)

    tenant_ids = list(lab.tenants.values_list("pk", flat=True))
    page.click("#lab-teardown")
    page.wait_for_selector("#lab-start-ipv6")
    deadline = time.monotonic() + 60
    while Tenant.objects.filter(pk__in=tenant_ids).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Tenant.objects.filter(pk__in=tenant_ids).exists(), "the lab's tenants stayed"
    listed = subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, text=True).stdout
    assert f"inst-{slaac.instance.kernel_id}" not in listed, listed
