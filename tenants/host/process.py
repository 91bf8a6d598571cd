"""One supervisor for every daemon the driver runs in a namespace: dnsmasq, udhcpc, and those to come (dhcpcd,
an RA sender, a metadata proxy).

Neutron's ``ProcessManager``/``ProcessMonitor`` (``neutron/agent/linux/external_process.py``) is the model:

* a frozen command (:class:`Command`) yields the argv and the environment (:func:`c_env`, ``LANG=C``) and names
  its pid file and log file;
* a process is ours only if its pid file names a live process running that program *inside that namespace*
  (:class:`Daemon`): a recycled pid is almost never the same program in the same network namespace;
* :class:`Supervisor` starts it in its namespace and either waits for its first process to exit (the daemons we
  run fork away once ready, so the exit status is a synchronous start-up result) or does not wait; it stops it
  with a signal and waits until it is gone;
* :class:`RestartBackoff` says when a dead one may be asked for again.

``/proc`` is read here and nowhere else (:func:`processes`). By hand, not with ``psutil``: over 394 processes
one pass (namespace inode + cmdline) took 25.9 ms by hand against 43.8 ms with ``psutil.process_iter(["cmdline"])``,
and one cmdline 40 µs against 55 µs; ``scan_host`` and ``remove_networks`` walk it for 500-1000 networks in the
bench, so the faster one stays.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Collection, Hashable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from . import netns
from .errors import HostError

PATH_ENV = "/usr/sbin:/usr/bin:/sbin:/bin"
RESTART_BACKOFF = 5.0  # seconds before the restart of the same daemon is asked for again
# A client started without waiting forks its daemon after its lease; the daemon then rewrites the pid file.
DAEMON_PID_WAIT = 1.0
FIRST_PROCESS_WAIT = 30.0  # longer than any first process lives (udhcpc: 3 discovers of 1 s, then its script)


def c_env(**extra: str) -> dict[str, str]:
    """The environment of every daemon: ``LANG=C`` keeps its messages parseable, ``PATH`` is fixed."""
    return {"LANG": "C", "LC_ALL": "C", "PATH": PATH_ENV, **extra}


def run_in(ns: str, argv: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run a short command inside ``ns`` and return its result (the caller judges the exit status)."""
    try:
        return netns.run_in(ns, lambda: subprocess.run(argv, input=stdin, capture_output=True, text=True,
                                                       env=c_env(), check=False, timeout=30))
    except FileNotFoundError:
        raise HostError(f"{argv[0]} not installed") from None


class Command(Protocol):
    """A frozen description of one daemon run (``DnsmasqCommand``, ``UdhcpcCommand``)."""

    @property
    def program(self) -> str: ...

    @property
    def pid_file(self) -> Path: ...

    @property
    def log_file(self) -> Path | None: ...

    @property
    def env(self) -> dict[str, str]: ...

    def argv(self) -> list[str]: ...


# --- /proc ----------------------------------------------------------------------------------------------------
def cmdline(pid: int) -> list[str] | None:
    """argv of ``pid``; None if gone or a zombie (zombies have an empty cmdline)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    if not raw:
        return None
    return raw.rstrip(b"\0").decode(errors="replace").split("\0")


def program_of(argv: list[str]) -> str:
    """The program an argv runs; a busybox applet counts as itself (``busybox udhcpc`` is ``udhcpc``), and so does
    a process title set by the program itself (``dhcpcd: eth0 [ip6]`` is ``dhcpcd``)."""
    prog = os.path.basename(argv[0])
    return argv[1] if prog == "busybox" and len(argv) > 1 else prog.split(": ", 1)[0]


@dataclass(frozen=True)
class ProcessEntry:
    """One live process as :func:`processes` found it."""

    pid: int
    netns_inode: int
    argv: list[str]

    @property
    def program(self) -> str:
        return program_of(self.argv)


def processes(in_netns: Collection[int] | None = None) -> Iterator[ProcessEntry]:
    """Every live process (zombies skipped), or only those inside the namespaces with these inodes.

    The one walk of /proc. The namespace is checked before the cmdline is read: a stat is cheaper.
    """
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        ino = netns.pid_inode(pid)
        if ino is None or (in_netns is not None and ino not in in_netns):
            continue
        argv = cmdline(pid)
        if argv:
            yield ProcessEntry(pid, ino, argv)


# --- signals --------------------------------------------------------------------------------------------------
def read_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file``, or None if missing or garbled."""
    try:
        text = pid_file.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def kill(pid: int, sig: int = signal.SIGTERM) -> bool:
    """Send ``sig``; a process that is already gone is fine. True if it was delivered."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pid: int, timeout: float = 2.0) -> None:
    """Wait until ``pid`` has exited (not our child, so poll /proc; zombies count as gone); SIGKILL it after
    ``timeout``."""
    deadline = time.monotonic() + timeout
    while cmdline(pid) is not None:
        if time.monotonic() > deadline:
            kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
        time.sleep(0.001)


def kill_and_wait(pids: Iterable[int], sig: int = signal.SIGKILL) -> list[int]:
    """Signal every pid first, then wait for each once: a batch costs one wait, not one per process."""
    sent = [pid for pid in pids if kill(pid, sig)]
    for pid in sent:
        wait_gone(pid)
    return sent


def kill_all_in(ns_names: Iterable[str]) -> None:
    """SIGKILL every process still inside these namespaces (we name them, so they are ours) until none is left.

    Why: a DHCP client started without waiting may not have written its pid file yet, or may be forking its
    daemon at that moment; the pid file then misses it, and once the namespace is unmounted it lives on in a
    nameless namespace no scan can name (the soak test found udhcpc processes left after deleting everything).
    """
    inodes = {ino for ino in (netns.inode(name) for name in ns_names) if ino is not None}
    if not inodes:
        return
    for _ in range(20):  # a process may fork while we kill its parent: look again until the namespaces are empty
        if not kill_and_wait([p.pid for p in processes(inodes)]):
            return


# --- one daemon -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Daemon:
    """Where one supervised process lives and how to recognise it: its program, namespace and pid file."""

    program: str
    ns: str
    pid_file: Path

    def _argv_if_program(self, pid: int) -> list[str] | None:
        argv = cmdline(pid)
        return argv if argv and program_of(argv) == self.program else None

    def pid(self) -> int | None:
        """The pid from the pid file if it is alive, runs ``program`` and runs in ``ns``: all three guard
        against pid reuse."""
        pid = read_pid(self.pid_file)
        if pid is None or self._argv_if_program(pid) is None:
            return None
        return pid if netns.proc_in_ns(pid, netns.inode(self.ns)) else None

    def stale_pid(self) -> int | None:
        """A process of ours (its argv names our pid file) that is alive but NOT in ``ns``.

        This happens when the namespace was deleted behind our back: the process keeps the old, now nameless
        namespace alive and would linger forever. Its argv carries our unique pid file path, which identifies it
        as ours even though the namespace check fails.
        """
        pid = read_pid(self.pid_file)
        argv = None if pid is None else self._argv_if_program(pid)
        if pid is None or argv is None or not any(str(self.pid_file) in a for a in argv):
            return None
        return None if netns.proc_in_ns(pid, netns.inode(self.ns)) else pid

    def runs(self, argv: list[str]) -> bool:
        """True if the daemon is up with exactly this argv (nothing a restart would change)."""
        pid = self.pid()
        return pid is not None and cmdline(pid) == argv

    def kill_strays(self) -> bool:
        """SIGKILL every ``program`` process in ``ns`` (one no pid file names any more); True if there was one."""
        ns_ino = netns.inode(self.ns)
        if ns_ino is None:
            return False
        return bool(kill_and_wait([p.pid for p in processes({ns_ino}) if p.program == self.program]))


def first_exit(p: subprocess.Popen[bytes], timeout: float, fail: Callable[[str], HostError]) -> str:
    """Wait for a daemon's first process to exit; its output, or ``fail(reason)`` on timeout or exit status."""
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        raise fail(f"did not daemonise within {timeout:.0f} s") from None
    text = out.decode(errors="replace").strip()
    if p.returncode != 0:
        raise fail(text or f"exit status {p.returncode}")
    return text


class Supervisor:
    """Starts and stops daemons; remembers the ones it started without waiting. One per driver.

    Not thread-safe per daemon, like the driver: jobs for one network hold its lock.
    """

    def __init__(self) -> None:
        self._unwaited: list[subprocess.Popen[bytes]] = []
        # pid file -> first process of a daemon started without waiting. udhcpc forks into the background after
        # its lease (or after giving up) and the daemon then rewrites the pid file: in between, the file names a
        # process that has exited, and a second convergence in that window (a batch job, then the instance's own
        # job) started a second client for the same instance (tests/faults/test_load.py saw 51 for 50).
        self._starting: dict[Path, subprocess.Popen[bytes]] = {}

    def start(self, daemon: Daemon, command: Command, *, wait: bool, timeout: float,
              fail: Callable[[str], HostError]) -> str:
        """Start ``command`` in ``daemon.ns``. ``wait``: until its first process has exited (its output is
        returned, a failure raises ``fail(reason)``); else at once, its output appended to its log file."""
        argv = command.argv()
        if not wait:
            self._unwaited[:] = [p for p in self._unwaited if p.poll() is None]  # reap: no zombies left behind
            p = netns.spawn(daemon.ns, argv, command.env, log=command.log_file or Path(os.devnull))
            self._unwaited.append(p)
            self._starting[daemon.pid_file] = p
            return ""
        return first_exit(netns.spawn(daemon.ns, argv, command.env), timeout, fail)

    def starting(self, daemon: Daemon) -> bool:
        """True while the daemon this supervisor started without waiting is still in its first process; once
        that has exited, wait (≤ 0.2 s) until the pid file names its daemon, so a pid check sees it."""
        p = self._starting.get(daemon.pid_file)
        if p is None:
            return False
        if p.poll() is None:
            return True
        self.daemon_pid(daemon, not_pid=p.pid, timeout=0.2)
        self._starting.pop(daemon.pid_file, None)
        return False

    def daemon_pid(self, daemon: Daemon, *, not_pid: int | None = None,
                   timeout: float = DAEMON_PID_WAIT) -> int | None:
        """The daemon's verified pid once its pid file names it (not its exited first process ``not_pid``)."""
        deadline = time.monotonic() + timeout
        while True:
            pid = daemon.pid()
            if pid is not None and pid != not_pid:
                return pid
            if time.monotonic() > deadline:
                return None
            time.sleep(0.002)

    def settled_pid(self, daemon: Daemon) -> int | None:
        """The daemon's pid once it runs on its own (not still leasing in its first process): what a signal
        meant for the daemon must go to. None if it does not run."""
        p = self._starting.get(daemon.pid_file)
        if p is not None:
            try:
                p.wait(timeout=FIRST_PROCESS_WAIT)
            except subprocess.TimeoutExpired:
                return None
            self.starting(daemon)
        # Started by another process (the agent), it may be between its first exit and the pid file rewrite.
        return self.daemon_pid(daemon)

    def running_as(self, daemon: Daemon, argv: list[str]) -> int | None:
        """The daemon's pid if it runs with exactly ``argv``. A copy stranded outside its namespace is killed, one
        with another argv is stopped: None then means "start it"."""
        stale = daemon.stale_pid()
        if stale is not None:
            kill_and_wait([stale])
        pid = daemon.pid()
        if pid is None or cmdline(pid) == argv:
            return pid
        kill_and_wait([pid], signal.SIGTERM)
        self.forget(daemon)
        return None

    def forget(self, daemon: Daemon) -> None:
        """The daemon was stopped on purpose: a new one may start at once."""
        self._starting.pop(daemon.pid_file, None)

    def stop(self, daemons: Iterable[Daemon], sig: int = signal.SIGTERM) -> None:
        """Signal every daemon (SIGKILL one stranded outside its namespace), then wait once for all of them."""
        pids = []
        for daemon in daemons:
            pid = daemon.pid()
            if pid is not None and kill(pid, sig):
                pids.append(pid)
            stale = daemon.stale_pid()
            if stale is not None and kill(stale, signal.SIGKILL):
                pids.append(stale)
            self.forget(daemon)
        for pid in pids:
            wait_gone(pid)


class RestartBackoff:
    """When the restart of the same thing may be asked for again: a restart job waiting in the queue behind a
    long batch is not enqueued once a second."""

    def __init__(self) -> None:
        self._next: dict[Hashable, float] = {}

    def due(self, key: Hashable, backoff: float = RESTART_BACKOFF) -> bool:
        """True (and the backoff starts) unless ``key`` was asked for less than its backoff ago."""
        now = time.monotonic()
        if self._next.get(key, 0.0) > now:
            return False
        self._next[key] = now + backoff
        return True

    def clear(self) -> None:
        """Forget every backoff (everything is due again)."""
        self._next.clear()
