"""The simulated upstream's echo service: answers every TCP connection with the caller's address as it sees it.

Why: SNAT and floating IPs are only observable from the outside; this is the outside. It is run as a script
(``python echo_peer.py PORT PID_FILE``, standard library only) inside the upstream namespace and behaves like
the other daemons the supervisor runs: the first process binds (so a start-up error is its exit status),
forks, writes the daemon's pid to the pid file and exits.
"""

import os
import socket
import sys


def serve(listener: socket.socket) -> None:
    while True:
        conn, peer = listener.accept()
        with conn:
            conn.sendall(f"{peer[0]}\n".encode())


def main() -> None:
    port, pid_file = int(sys.argv[1]), sys.argv[2]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))  # noqa: S104 - inside the upstream namespace, which has nothing else
    listener.listen(64)
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
    serve(listener)


if __name__ == "__main__":
    main()
