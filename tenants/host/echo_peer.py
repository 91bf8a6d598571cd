"""The simulated upstream's echo service: answers every TCP connection with the caller's address as it sees it.

Why: SNAT and floating IPs are only observable from the outside; this is the outside. It is run as a script
(``python echo_peer.py PORT PID_FILE``, standard library only) inside the upstream namespace and behaves like
the other daemons the supervisor runs: the first process binds (so a start-up error is its exit status),
forks, writes the daemon's pid to the pid file and exits. It listens on IPv4 and (v6-only, so IPv4 callers are
never shown as ``::ffff:`` addresses) on IPv6.
"""

import os
import selectors
import socket
import sys


def serve(listeners: list[socket.socket]) -> None:
    sel = selectors.DefaultSelector()
    for listener in listeners:
        sel.register(listener, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            conn, peer = key.fileobj.accept()  # type: ignore[union-attr]
            with conn:
                conn.sendall(f"{peer[0]}\n".encode())


def listen(family: socket.AddressFamily, host: str, port: int) -> socket.socket:
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    listener.bind((host, port))
    listener.listen(64)
    return listener


def main() -> None:
    port, pid_file = int(sys.argv[1]), sys.argv[2]
    # Inside the upstream namespace, which has nothing else.
    listeners = [listen(socket.AF_INET, "0.0.0.0", port), listen(socket.AF_INET6, "::", port)]  # noqa: S104
    pid = os.fork()
    if pid:
        tmp = f"{pid_file}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{pid}\n")
        os.replace(tmp, pid_file)
        os._exit(0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    serve(listeners)


if __name__ == "__main__":
    main()
