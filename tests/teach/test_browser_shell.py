"""Real Chromium against a real daphne: type ``ip addr`` into the namespace shell and see the address; ping
from both sides of compare mode and see two different MACs answer for the same address.

The web side is a daphne subprocess (no root there, no kernel access); the agent side runs as jobs in a thread
of this test process (``agent_thread``), as root — exactly the code the agent runs.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from teach.models import ShellSession

ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", Path(__file__).resolve().parents[2] / "artifacts"))

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host, pytest.mark.browser]

BUFFER_TEXT = """() => { const b = window.teachTerminal.buffer.active; let t = "";
    for (let i = 0; i < b.length; i++) t += b.getLine(i).translateToString(true) + "\\n"; return t; }"""


def test_browser_types_ip_addr_into_the_shell(settings, overlap, agent_thread, user_factory, browser_page):
    settings.NETDASH_SHELL_ENABLED = True  # the agent side (this process) must agree with the server's env
    admin = user_factory(username="shell-teacher", is_superuser=True)
    instance = overlap["ta"]["instance"]
    page = browser_page(admin, f"/teach/instances/{instance.pk}/shell/")
    page.wait_for_selector("#terminal[data-ready='1']", timeout=20000)
    page.click("#terminal")
    page.keyboard.type("ip addr")
    page.keyboard.press("Enter")
    page.wait_for_function(f"ip => ({BUFFER_TEXT})().includes(ip + '/24')", arg=instance.ip_address, timeout=20000)
    assert "time limit" in page.inner_text("#shell-status")
    page.screenshot(path=str(ARTIFACTS / "teach-shell.png"))
    page.close()  # the consumer disconnects: the agent ends the session
    session = ShellSession.objects.get()
    deadline = time.monotonic() + 10
    while session.ended_at is None and time.monotonic() < deadline:
        time.sleep(0.1)
        session.refresh_from_db()
    assert session.username == "shell-teacher" and session.ended_at is not None
    assert "ip addr" in session.keystrokes


def test_a_paste_larger_than_a_frame_reaches_the_shell(settings, overlap, agent_thread, user_factory, browser_page):
    """A paste is one ``onData`` string; shell.js splits it so no frame passes the 4 KiB limit (tenants.websocket),
    which would close the socket with 1009 instead of running the pasted lines."""
    settings.NETDASH_SHELL_ENABLED = True
    admin = user_factory(is_superuser=True)
    page = browser_page(admin, f"/teach/instances/{overlap['ta']['instance'].pk}/shell/")
    page.wait_for_selector("#terminal[data-ready='1']", timeout=20000)
    paste = "cat > /dev/null <<'EOF'\n" + ("y" * 70 + "\n") * 80 + "EOF\necho pasted-$((6 * 7))\n"
    assert len(paste) > 5000
    page.evaluate("text => window.teachTerminal.paste(text)", paste)
    page.click("#terminal")
    page.keyboard.press("Enter")  # bash's bracketed paste holds a pasted line until Enter
    page.wait_for_function(f"() => ({BUFFER_TEXT})().includes('pasted-42')", timeout=20000)
    assert not page.evaluate("() => document.getElementById('terminal').dataset.closed")
    page.close()


def test_browser_compare_ping_shows_two_macs(overlap, agent_thread, user_factory, browser_page):
    admin = user_factory(is_superuser=True)
    a, b = overlap["ta"]["instance"], overlap["tb"]["instance"]
    page = browser_page(admin, f"/teach/compare/?a=inst-{a.pk}&b=inst-{b.pk}")
    assert "Both namespaces hold" in page.inner_text(".findings")
    panels = page.locator("[data-diag-ws]")
    assert panels.count() == 2
    for i in range(2):
        panel = panels.nth(i)
        panel.locator("select[name=action]").select_option("ping")
        panel.locator("input[name=target]").fill("192.168.1.2")
        panel.locator("input[name=count]").fill("1")
        panel.locator("button[type=submit]").click()
        panel.locator(".diag-output .done").wait_for(timeout=20000)
        assert "[exit 0]" in panel.locator(".diag-output").inner_text()
    # The page refreshes itself: the neighbour rows for 192.168.1.2 appear, with different MACs, highlighted.
    page.wait_for_function("""() => [...document.querySelectorAll('#compare-body .ns-neighbours tr.cmp-differs')]
                              .filter(tr => tr.textContent.includes('192.168.1.2')).length === 2""", timeout=20000)
    assert "is answered by" in page.inner_text(".findings")
    page.screenshot(path=str(ARTIFACTS / "teach-compare.png"), full_page=True)
