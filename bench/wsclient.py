"""A minimal websocket client (RFC 6455, text frames) that timestamps every frame it receives.

Why not a library: none is in requirements.txt (daphne's autobahn is a server-side dependency), and the bench
needs exactly one thing — the ``perf_counter`` at which each JSON frame arrived, taken in this process so it
compares with the moment the service call started.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import queue
import struct
import threading
import time
from typing import Any


class WebsocketListener:
    """Connects to ``ws://host:port/path`` in a background thread; received frames go to ``frames``."""

    def __init__(self, host: str, port: int, path: str, *, cookie: str = "", origin: str = "") -> None:
        self.host, self.port, self.path, self.cookie, self.origin = host, port, path, cookie, origin
        self.frames: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.connected = threading.Event()
        self.error: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._writer: asyncio.StreamWriter | None = None
        self._thread = threading.Thread(target=self._run, name="bench-ws", daemon=True)

    def start(self, timeout: float = 10.0) -> WebsocketListener:
        self._thread.start()
        if not self.connected.wait(timeout):
            raise TimeoutError(f"websocket {self.path} did not connect: {self.error}")
        if self.error is not None:
            raise self.error
        return self

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # reported through start() or read by the caller
            self.error = exc
            self.connected.set()

    async def _main(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self._writer = writer
        key = base64.b64encode(os.urandom(16)).decode()
        headers = [f"GET {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Upgrade: websocket",
                   "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if self.origin:
            headers.append(f"Origin: {self.origin}")
        if self.cookie:
            headers.append(f"Cookie: {self.cookie}")
        writer.write(("\r\n".join(headers) + "\r\n\r\n").encode())
        await writer.drain()
        status = await reader.readline()
        if b" 101 " not in status:
            raise ConnectionError(f"websocket handshake refused: {status.decode(errors='replace').strip()}")
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        self.connected.set()
        buf = b""
        while True:
            head = await reader.readexactly(2)
            fin, opcode = head[0] & 0x80, head[0] & 0x0F
            length = head[1] & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await reader.readexactly(8))
            payload = await reader.readexactly(length)  # servers never mask
            now = time.perf_counter()
            if opcode == 0x8:  # close
                return
            if opcode == 0x9:  # ping -> pong
                self._send(0xA, payload)
                continue
            if opcode in (0x1, 0x0):
                buf += payload
                if fin:
                    self.frames.put((now, json.loads(buf.decode())))
                    buf = b""

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        assert self._writer is not None
        self._writer.write(head + mask + masked)

    def close(self) -> None:
        if self._writer is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._writer.close)
        self._thread.join(timeout=2)


class ChannelLayerListener:
    """Fallback when the ``live`` app is not installed: subscribe to the tenant's group on the channel layer."""

    def __init__(self, group: str) -> None:
        self.group = group
        self.frames: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()
        self.connected = threading.Event()
        self.error: BaseException | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="bench-layer", daemon=True)

    def start(self, timeout: float = 10.0) -> ChannelLayerListener:
        self._thread.start()
        if not self.connected.wait(timeout) or self.error is not None:
            raise RuntimeError(f"channel layer listener failed: {self.error}")
        return self

    def _run(self) -> None:
        from channels.layers import get_channel_layer

        async def main() -> None:
            layer = get_channel_layer()
            channel = await layer.new_channel()
            await layer.group_add(self.group, channel)
            self.connected.set()
            while not self._stop:
                message = await layer.receive(channel)
                self.frames.put((time.perf_counter(), {"type": "event", **message}))

        try:
            asyncio.run(main())
        except BaseException as exc:
            self.error = exc
            self.connected.set()

    def close(self) -> None:
        self._stop = True
