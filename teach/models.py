"""Audit records of what users ran inside namespaces from the browser.

Both tables are append-mostly logs: who, which namespace (by kernel name, which survives the object's deletion),
when, and what — diagnostics with their arguments and exit status, shell sessions with what was typed.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models


class TargetKind(models.TextChoices):
    """Which namespace of an object: an instance's, or a network's DHCP or segment namespace."""

    INSTANCE = "inst", "Instance namespace"
    DHCP = "dhcp", "DHCP namespace"
    SEGMENT = "seg", "Segment namespace"


class LabKind(models.TextChoices):
    """Which guided lab a sandbox builds."""

    OVERLAP = "overlap", "Overlapping IPs"
    ROUTED = "routed", "Routed overlapping IPs"
    IPV6 = "ipv6", "Three IPv6 modes"
    FAILOVER = "failover", "One network on two nodes, DHCP failover"


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class DiagnosticRun(models.Model):
    """One diagnostic (ping, show addr, renew …) a user ran in a namespace."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=8, choices=TargetKind.choices)
    object_id = models.PositiveBigIntegerField()
    namespace = models.CharField(max_length=64)
    action = models.CharField(max_length=32)
    args = models.JSONField(default=dict, blank=True)
    group = models.CharField(max_length=99, help_text="Channel-layer group the output is streamed to.")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.QUEUED)
    exit_code = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.action} in {self.namespace}"


class ShellSession(models.Model):
    """One interactive shell in a namespace: who, where, when, and every keystroke sent to it."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    username = models.CharField(max_length=150, help_text="Kept even if the user is deleted.")
    kind = models.CharField(max_length=8, choices=TargetKind.choices)
    object_id = models.PositiveBigIntegerField()
    namespace = models.CharField(max_length=64)
    pid = models.IntegerField(null=True, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=200, blank=True, default="")
    keystrokes = models.TextField(blank=True, default="", help_text="Everything typed, as sent by the terminal.")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"{self.username} in {self.namespace} at {self.started_at:%Y-%m-%d %H:%M}"


class Classroom(models.Model):
    """A class: its instructors turn labs on and set how many labs a learner may run and for how long."""

    name = models.CharField(max_length=100, unique=True)
    instructors = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="classrooms_taught")
    learners = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="classrooms")
    labs_enabled = models.BooleanField(default=False, help_text="Learners of this class may start labs.")
    lab_quota = models.PositiveSmallIntegerField(default=1, help_text="Labs one learner may run at the same time.")
    lab_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Lifetime of a lab; empty: NETDASH_LAB_MINUTES.")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Lab(models.Model):
    """One learner's private sandbox, gone when it expires: "Overlapping IPs" (two tenants of its own on one CIDR)
    or "Routed overlapping IPs" (the same, each behind its own router, plus a third tenant holding the simulated
    upstream's external network), or "Three IPv6 modes" (one tenant, an IPv6-only network per mode).

    The tenants are ordinary tenants whose only member is the learner, so every page, API route and websocket
    that scopes by membership keeps other learners out without knowing labs exist.
    """

    learner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="labs")
    classroom = models.ForeignKey(Classroom, null=True, blank=True, on_delete=models.SET_NULL, related_name="labs")
    tenants = models.ManyToManyField("tenants.Tenant", related_name="labs")
    kind = models.CharField(max_length=16, choices=LabKind.choices, default=LabKind.OVERLAP)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["expires_at"])]

    def __str__(self) -> str:
        return f"lab {self.pk} of {self.learner}"
