"""Websockets of the teaching tools: diagnostics output and the namespace shell.

Thin (STYLE rule 9): who may connect is decided by ``teach.targets`` / ``teach.services``; the agent does the
work. The consumers only join groups, hand requests to services, and relay channel-layer messages as JSON; frames
are parsed, limited and refused by ``tenants.websocket``, the protocol the live view speaks too.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.core.exceptions import PermissionDenied, ValidationError

from tenants.websocket import CLOSE_FORBIDDEN, JsonFramesConsumer

from . import services
from .targets import Target, resolve

MAX_PENDING_INPUT = 64 * 1024


def _target_from_scope(scope: dict[str, Any]) -> Target | None:
    kwargs = scope["url_route"]["kwargs"]
    object_id = kwargs.get("instance_id", kwargs.get("network_id"))
    return resolve(scope.get("user"), kwargs["kind"], object_id)


class DiagnosticsConsumer(JsonFramesConsumer):
    """``ws/teach/…/diagnostics/``: ``{"type": "run", "action": "ping", "args": {…}}`` → streamed lines."""

    client_types = frozenset({"run"})
    target: Target | None = None
    group = ""

    async def connect(self) -> None:
        self.target = await database_sync_to_async(_target_from_scope)(self.scope)
        if self.target is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.group = services.diagnostic_group()
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "namespace": self.target.namespace, "label": self.target.label})

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        try:
            run = await database_sync_to_async(services.diagnostic_start)(
                user=self.scope["user"], target=self.target, action=content.get("action"),
                args=content.get("args"), group=self.group,
            )
        except ValidationError as exc:
            await self.refuse("invalid", " ".join(exc.messages))
            return
        await self.send_json({"type": "accepted", "run": run.pk, "action": run.action, "args": run.args})

    async def teach_diag(self, message: dict[str, Any]) -> None:
        """Relay one line / done message from the agent job."""
        await self.send_json({k: v for k, v in message.items() if k != "type"} | {"type": message["event"]})


class ShellConsumer(JsonFramesConsumer):
    """``ws/teach/…/shell/``: a terminal relayed to a pty the agent opened in the namespace (superusers only)."""

    client_types = frozenset({"input", "resize"})
    session_id: int | None = None
    agent = ""
    pending: list[str]

    async def connect(self) -> None:
        self.pending = []
        user = self.scope.get("user")
        target = await database_sync_to_async(_target_from_scope)(self.scope)
        if target is None or user is None or not services.shell_allowed(user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.accept()
        try:
            session = await database_sync_to_async(services.shell_open)(
                user=user, target=target, reply_channel=self.channel_name
            )
        except PermissionDenied:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.session_id = session.pk
        await self.send_json({"type": "status", "text": f"starting a shell in {target.namespace}…",
                              "session": session.pk})

    async def disconnect(self, code: int) -> None:
        if self.agent:
            await self.channel_layer.send(self.agent, {"type": "shell.close", "reason": "browser disconnected"})
        if self.session_id is not None:
            await database_sync_to_async(services.shell_hangup)(session_id=self.session_id)

    async def receive_json(self, content: dict[str, Any], **kwargs: Any) -> None:
        if content["type"] == "input":
            await self._input(content.get("data"))
        else:
            await self._resize(content.get("rows"), content.get("cols"))

    async def _input(self, data: Any) -> None:
        if not isinstance(data, str):
            await self.refuse("invalid", "input needs a string \"data\"")
        elif self.agent:
            await self.channel_layer.send(self.agent, {"type": "shell.input", "data": data})
        elif sum(map(len, self.pending)) < MAX_PENDING_INPUT:
            self.pending.append(data)

    async def _resize(self, rows: Any, cols: Any) -> None:
        # Whole numbers only: 1e999 parses as infinity, and int(inf) raised in the agent's relay loop.
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in (rows, cols)):
            await self.refuse("invalid", "resize needs whole-number \"rows\" and \"cols\"")
        elif self.agent:
            await self.channel_layer.send(self.agent, {"type": "shell.resize", "rows": max(2, min(rows, 500)),
                                                       "cols": max(10, min(cols, 500))})

    async def shell_ready(self, message: dict[str, Any]) -> None:
        self.agent = message["agent"]
        await self.send_json({"type": "ready", "limit": message.get("limit")})
        for data in self.pending:
            await self.channel_layer.send(self.agent, {"type": "shell.input", "data": data})
        self.pending = []

    async def shell_output(self, message: dict[str, Any]) -> None:
        await self.send_json({"type": "output", "data": message["data"]})

    async def shell_closed(self, message: dict[str, Any]) -> None:
        self.agent = ""
        await self.send_json({"type": "closed", "reason": message.get("reason", "")})
        await self.close()
