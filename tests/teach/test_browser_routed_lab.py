"""Real Chromium, daphne and agent: a learner (not staff) starts the routed lab and, without a reload, sees it
built (instances and routers), then what the kernel showed: two sources upstream, each router's own flows."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from teach.models import Classroom, Lab
from tenants.models import Router, Tenant

ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", Path(__file__).resolve().parents[2] / "artifacts"))

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host, pytest.mark.browser]


def test_a_learner_builds_the_routed_lab_and_sees_the_result_live(host_clean, agent_loops, user_factory,
                                                                  browser_page):
    classroom = Classroom.objects.create(name="net102", labs_enabled=True)
    learner = user_factory(username="learner")
    classroom.learners.add(learner)
    assert not learner.is_staff and not learner.is_superuser
    page = browser_page(learner, "/teach/lab/")
    page.click("#lab-start-routed")  # a form post: the one navigation, to the lab's page
    page.wait_for_selector("[data-step='built']")
    lab = Lab.objects.get(learner=learner)
    page.evaluate("() => { window.labPageMarker = 'same page'; }")  # gone if anything reloads the page

    page.wait_for_selector("[data-step='built'][data-done='1']", timeout=90000)
    page.wait_for_selector("[data-step='different_sources'][data-done='1']", timeout=60000)
    page.wait_for_selector("[data-step='own_flows'][data-done='1']", timeout=60000)
    facts = page.inner_text("[data-notice-facts]")
    a, b = Router.objects.filter(tenant__labs=lab).order_by("tenant__slug")
    assert f"{a.external_ip} and {b.external_ip}" in facts and "two different source addresses" in facts
    assert [b_.strip() for b_ in page.locator("[data-router-id]").all_inner_texts()] == ["active", "active"]
    assert page.evaluate("() => window.labPageMarker") == "same page"
    page.screenshot(path=str(ARTIFACTS / "teach-routed-lab.png"), full_page=True)

    tenant_ids = list(lab.tenants.values_list("pk", flat=True))
    page.click("#lab-teardown")
    page.wait_for_selector("#lab-start-routed")
    deadline = time.monotonic() + 60
    while Tenant.objects.filter(pk__in=tenant_ids).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not Tenant.objects.filter(pk__in=tenant_ids).exists(), "the lab's tenants stayed"
    listed = subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, text=True).stdout
    assert not [r for r in (a, b) if f"qrouter-{r.kernel_id}" in listed], listed
