"""Writes and agent requests of the teaching tools. Views and consumers call these; these enqueue agent jobs.

The web process never reads kernel state or spawns anything: ``inspect`` waits (briefly) for an agent job's
result, diagnostics and shells are agent jobs that stream to the channel layer. Access is checked before
anything is enqueued (``teach.targets.resolve`` → tenant selectors), and again by the consumers on connect.
"""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

import django_rq
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from redis.exceptions import RedisError
from rq.results import Result

from tenants import services as tenant_services
from tenants.choices import ObjectStatus, Role
from tenants.models import Network, Tenant
from tenants.queue import enqueue_on_commit, queue_name_for_node

from . import diagnostics, selectors
from .models import DiagnosticRun, RunStatus, ShellSession
from .targets import Target

log = logging.getLogger(__name__)

INSPECT_WAIT_SECONDS = 5
MAX_ACTIVE_DIAGNOSTICS = 2  # per user: queued or running; the agent runs jobs one at a time


class AgentUnavailable(Exception):
    """The node's agent did not answer in time (not running, or busy); the message says so."""


def inspect(*, target: Target) -> dict[str, Any]:
    """Kernel state of ``target``'s namespace, read by the agent of its node (waits up to a few seconds).

    The caller has resolved ``target`` for the requesting user already (``teach.targets.resolve``).
    """
    queue = django_rq.get_queue(queue_name_for_node(target.node))
    try:
        job = queue.enqueue("teach.jobs.inspect_target", target.kind, target.object_id, ttl=INSPECT_WAIT_SECONDS * 2,
                            result_ttl=60, failure_ttl=300, job_timeout=30)
        result = job.latest_result(timeout=INSPECT_WAIT_SECONDS)
    except RedisError as exc:
        raise AgentUnavailable(f"the job queue is unavailable ({exc})") from exc
    if result is None:
        job.cancel()
        raise AgentUnavailable(f"the agent of node {target.node!r} did not answer within {INSPECT_WAIT_SECONDS} s; "
                               "is it running (manage.py agent)?")
    if result.type != Result.Type.SUCCESSFUL:
        raise AgentUnavailable(f"the agent could not read the namespace: {(result.exc_string or '').strip()[-300:]}")
    return result.return_value


def diagnostic_group() -> str:
    """A fresh channel-layer group for one websocket's diagnostic output."""
    return f"teach.diag.{secrets.token_hex(8)}"


def diagnostic_start(*, user: AbstractBaseUser, target: Target, action: str, args: dict[str, Any] | None,
                     group: str) -> DiagnosticRun:
    """Validate and record a diagnostic, then have the agent run it (output streamed to ``group``)."""
    try:
        clean = diagnostics.validate(action, args, target.kind)
    except diagnostics.DiagnosticError as exc:
        raise ValidationError(str(exc), code="invalid") from None
    # Only recent runs count: a run stuck "queued" because the agent was down must not block the user forever.
    recent = timezone.now() - timedelta(minutes=2)
    active = DiagnosticRun.objects.filter(user=user, status__in=[RunStatus.QUEUED, RunStatus.RUNNING],
                                          created_at__gte=recent)
    if active.count() >= MAX_ACTIVE_DIAGNOSTICS:
        raise ValidationError("Your previous diagnostics are still running; wait for them to finish.", code="busy")
    with transaction.atomic():
        run = DiagnosticRun.objects.create(user=user, kind=target.kind, object_id=target.object_id,
                                           namespace=target.namespace, action=action, args=clean, group=group)
        enqueue_on_commit("teach.jobs.run_diagnostic", run.pk, node=target.node)
    return run


def shell_allowed(user: AbstractBaseUser) -> bool:
    """Shells are for superusers, and only when ``NETDASH_SHELL_ENABLED`` is on."""
    return bool(settings.NETDASH_SHELL_ENABLED and user.is_authenticated and user.is_superuser)


def shell_open(*, user: AbstractBaseUser, target: Target, reply_channel: str) -> ShellSession:
    """Record a shell session and ask the agent to start it; output goes to ``reply_channel``."""
    if not shell_allowed(user):
        raise PermissionDenied("The namespace shell is for superusers and must be enabled in settings.")
    with transaction.atomic():
        session = ShellSession.objects.create(user=user, username=user.get_username(), kind=target.kind,
                                              object_id=target.object_id, namespace=target.namespace)
        enqueue_on_commit("teach.jobs.shell_session", session.pk, reply_channel, node=target.node)
    log.info("shell session %s: %s opened %s", session.pk, session.username, session.namespace)
    return session


# --- the lab -------------------------------------------------------------------------------------------------

def _lab_tenants_for(user: AbstractBaseUser) -> list[Tenant]:
    if user.is_superuser:
        tenants = []
        for slug in selectors.LAB_TENANT_SLUGS:
            tenant = Tenant.objects.filter(slug=slug).first()
            if tenant is None:
                tenant = tenant_services.tenant_create(name=f"Lab {slug[-1].upper()}", slug=slug, actor=user)
                tenant_services.membership_set(tenant=tenant, user=user, role=Role.ADMIN, actor=user)
            tenants.append(tenant)
        return tenants
    tenants = selectors.lab_tenants(user)
    if len(tenants) != 2:
        raise PermissionDenied("The lab needs two lab tenants (slugs starting with 'lab-'); ask an administrator.")
    return tenants


def lab_build(*, user: AbstractBaseUser) -> list[Network]:
    """Two tenants, each with a network on the same CIDR and one instance: the overlapping-IPs lab.

    Idempotent: what exists is kept, what is missing is created (and realised by the agent after commit).
    """
    if not user.is_authenticated:
        raise PermissionDenied("Sign in first.")
    networks = []
    with transaction.atomic():
        for tenant in _lab_tenants_for(user):
            network = (Network.objects.filter(tenant=tenant, name=selectors.LAB_NETWORK)
                       .exclude(status=ObjectStatus.DELETING).first())
            if network is None:
                network = tenant_services.network_create(
                    tenant=tenant, name=selectors.LAB_NETWORK, actor=user,
                    subnet={"cidr": selectors.LAB_CIDR, "domain_name": f"{tenant.slug}.internal"},
                )
            if not network.instances.exclude(status=ObjectStatus.DELETING).exists():
                tenant_services.instance_create(network=network, hostname=f"{tenant.slug}-vm", actor=user)
            networks.append(network)
    return networks


def lab_teardown(*, user: AbstractBaseUser) -> int:
    """Delete both lab networks (the agent removes their namespaces, dnsmasq and instances). Returns how many."""
    count = 0
    with transaction.atomic():
        for side in selectors.lab_state(user):
            if side.network is not None:
                tenant_services.network_delete(network=side.network, actor=user)
                count += 1
    return count


def shell_hangup(*, session_id: int) -> None:
    """The browser went away: mark the session so the agent ends it even if it never heard the close."""
    ShellSession.objects.filter(pk=session_id, ended_at=None).update(end_reason="browser disconnected")
