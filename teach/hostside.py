"""The teaching tools' part of the host driver: run a fixed argv in a namespace, open a shell on a pty.

Pure Python, no Django (like ``tenants.host``): only the agent imports this. It builds on the driver's namespace
primitives (``tenants.host.netns``): a thread enters the namespace and spawns the process, which inherits it.
Nothing here goes through a shell: every argv is a list built from validated values.
"""

from __future__ import annotations

import fcntl
import os
import pty
import pwd
import socket
import struct
import subprocess
import termios
import threading
from collections.abc import Callable
from dataclasses import dataclass

from tenants.host import netns

BASE_ENV = {"LANG": "C", "LC_ALL": "C", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}


def run_streaming(ns: str, argv: list[str], on_line: Callable[[str], None], *, timeout: float = 20.0) -> int:
    """Run ``argv`` inside namespace ``ns``, call ``on_line`` for each output line; return the exit status.

    The process is killed after ``timeout`` seconds (exit status then negative, as ``subprocess`` reports it).
    """
    proc = netns.run_in(
        ns,
        lambda: subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=BASE_ENV,
            start_new_session=True, close_fds=True, cwd="/",
        ),
    )
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            on_line(raw.decode(errors="replace").rstrip("\n"))
        return proc.wait()
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def echo_probe(ns: str, address: str, port: int, *, timeout: float = 5.0) -> str:
    """Connect from inside ``ns`` to an echo service that answers with the caller's address as it saw it; return
    that answer ("" when unreachable). The socket is created by a thread inside ``ns``, so it lives there."""

    def probe() -> str:
        try:
            with socket.create_connection((address, port), timeout=timeout) as s:
                return s.recv(64).decode(errors="replace").strip()
        except OSError:
            return ""

    return netns.run_in(ns, probe)


def user_id(name: str) -> int:
    """Numeric uid of ``name`` (the shell user)."""
    return pwd.getpwnam(name).pw_uid


@dataclass(frozen=True)
class ShellCommand:
    """An interactive shell for a person: unprivileged, its own session, the pty as controlling terminal.

    ``setsid -c`` makes the pty the controlling terminal (job control, Ctrl-C); ``setpriv`` drops to ``user`` with
    no supplementary groups and no way back (no_new_privs) before bash starts. The shell still sees the host's
    file system as that user, exactly like ``ip netns exec NS setpriv … bash`` would.
    """

    ns: str
    user: str = "nobody"
    group: str = "nogroup"

    def argv(self) -> list[str]:
        return [
            "setsid", "-w", "-c",
            "setpriv", f"--reuid={self.user}", f"--regid={self.group}", "--clear-groups", "--no-new-privs",
            "--", "bash", "--noprofile", "--norc", "-i",
        ]

    @property
    def env(self) -> dict[str, str]:
        return {**BASE_ENV, "TERM": "xterm-256color", "HOME": "/", "PS1": f"[{self.ns}] \\w \\$ "}


@dataclass
class PtyProcess:
    """A running shell: its process and the pty master the caller reads and writes."""

    proc: subprocess.Popen[bytes]
    master_fd: int

    @property
    def pid(self) -> int:
        return self.proc.pid

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.master_fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def kill(self) -> None:
        """Kill the shell and everything it started (its own session and process group)."""
        try:
            os.killpg(self.proc.pid, 9)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.close(self.master_fd)
        except OSError:
            pass


def spawn_shell(command: ShellCommand, *, rows: int = 24, cols: int = 80) -> PtyProcess:
    """Start ``command`` inside its namespace on a new pty."""
    master, slave = pty.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        proc = netns.run_in(
            command.ns,
            lambda: subprocess.Popen(
                command.argv(), stdin=slave, stdout=slave, stderr=slave, env=command.env, close_fds=True,
                cwd="/",
            ),
        )
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    os.set_blocking(master, False)
    return PtyProcess(proc, master)
