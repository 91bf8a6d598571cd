"""Real Chromium against a real daphne: type ``ip addr`` into the namespace shell and see the address.

The web side is a daphne subprocess (no root needed there, no kernel access); the agent side runs as jobs in a
thread of this test process (``agent_thread``), as root, exactly the code the agent runs.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from django.test import Client

from teach.models import ShellSession

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.host, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", ROOT / "artifacts"))


@pytest.fixture
def daphne_shell_server(django_db_blocker):
    """daphne on a free loopback port, against the file-based test DB, with the shell enabled."""
    from django.core.management import call_command
    from django.db import connection

    with django_db_blocker.unblock():
        db_name = connection.settings_dict["NAME"]
        call_command("collectstatic", "--noinput", verbosity=0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{db_name}", DEBUG="0", NETDASH_SHELL_ENABLED="1")
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "teach-daphne.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "netdash.asgi:application"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/static/teach/vendor/xterm/xterm.js", timeout=1).read()  # noqa: S310
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"daphne did not start: {log.read_text()[-2000:]}") from None
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_browser_types_ip_addr_into_the_shell(settings, overlap, agent_thread, user_factory, daphne_shell_server):
    from playwright.sync_api import sync_playwright

    settings.NETDASH_SHELL_ENABLED = True  # the agent side (this process) must agree
    admin = user_factory(username="shell-teacher", is_superuser=True)
    client = Client()
    client.force_login(admin)
    cookie = {"name": settings.SESSION_COOKIE_NAME, "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
              "url": daphne_shell_server}
    instance = overlap["ta"]["instance"]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            context = browser.new_context(viewport={"width": 1300, "height": 900})
            context.add_cookies([cookie])
            page = context.new_page()
            page.goto(f"{daphne_shell_server}/teach/instances/{instance.pk}/shell/")
            page.wait_for_selector("#terminal[data-ready='1']", timeout=20000)
            page.click("#terminal")
            page.keyboard.type("ip addr")
            page.keyboard.press("Enter")
            page.wait_for_function(
                """ip => { const b = window.teachTerminal.buffer.active; let t = "";
                           for (let i = 0; i < b.length; i++) t += b.getLine(i).translateToString(true) + "\\n";
                           return t.includes(ip + "/24"); }""",
                arg=instance.ip_address, timeout=20000,
            )
            assert "time limit" in page.inner_text("#shell-status")
            page.screenshot(path=str(ARTIFACTS / "teach-shell.png"))
            page.close()  # the consumer disconnects: the agent ends the session
        finally:
            browser.close()
    session = ShellSession.objects.get()
    deadline = time.monotonic() + 10
    while session.ended_at is None and time.monotonic() < deadline:
        time.sleep(0.1)
        session.refresh_from_db()
    assert session.username == "shell-teacher" and session.ended_at is not None
    assert "ip addr" in session.keystrokes
