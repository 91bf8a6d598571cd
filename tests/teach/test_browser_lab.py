"""Real Chromium against a real daphne and the real agent jobs: a learner (not staff) starts a lab, watches it
build, sees what to notice from the kernel, pings, and tears it down — without ever reloading the page."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from teach.models import Classroom, Lab
from tenants.hostspecs import names
from tenants.models import Instance, Network, Tenant

ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", Path(__file__).resolve().parents[2] / "artifacts"))

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host, pytest.mark.browser]


def _wait(predicate, timeout: float = 40.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_a_learner_builds_uses_and_tears_down_a_lab_live(host_clean, agent_loops, user_factory, browser_page):
    classroom = Classroom.objects.create(name="net101", labs_enabled=True)
    learner = user_factory(username="learner")
    classroom.learners.add(learner)
    assert not learner.is_staff and not learner.is_superuser
    page = browser_page(learner, "/teach/lab/")
    page.click("#lab-start")  # a form post: the one navigation of the lab, to its page
    page.wait_for_selector("[data-step='built']")
    lab = Lab.objects.get(learner=learner)
    page.evaluate("() => { window.labPageMarker = 'same page'; }")  # gone if anything reloads the page

    page.wait_for_selector("[data-step='built'][data-done='1']", timeout=60000)
    page.wait_for_selector("[data-step='same_address'][data-done='1']", timeout=60000)
    facts = page.inner_text("[data-notice-facts]")
    a, b = Instance.objects.filter(network__tenant__labs=lab).order_by("network__tenant__slug")
    assert a.ip_address == b.ip_address and f"{a.ip_address}/24" in facts
    assert "different network namespaces" in facts
    cells = page.locator("td[data-instance-id][data-field='ip_address']").all_inner_texts()
    assert cells == [a.ip_address, b.ip_address]
    assert page.inner_text("[data-live-status]") == "live"

    page.click("#lab-ping")
    page.wait_for_selector("[data-step='neighbour_differs'][data-done='1']", timeout=60000)
    assert "is answered by" in page.inner_text("[data-notice-facts]")
    assert page.evaluate("() => window.labPageMarker") == "same page"
    page.screenshot(path=str(ARTIFACTS / "teach-lab.png"), full_page=True)

    n = names()
    namespaces = [n.inst_ns(i.kernel_id) for i in (a, b)]
    namespaces += [n.dhcp_ns(net.kernel_id) for net in Network.objects.filter(tenant__labs=lab)]
    tenant_ids = list(lab.tenants.values_list("pk", flat=True))
    page.click("#lab-teardown")
    page.wait_for_selector("#lab-start")
    assert "No lab running" in page.inner_text("#lab-list")
    assert _wait(lambda: not Tenant.objects.filter(pk__in=tenant_ids).exists()), "the lab's tenants stayed"
    listed = subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, text=True).stdout
    assert not [ns for ns in namespaces if ns in listed], listed
