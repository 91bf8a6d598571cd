"""Status and kind enums shared by models, services, jobs and the UI."""

from django.db import models


class Role(models.TextChoices):
    MEMBER = "member", "Member"
    ADMIN = "admin", "Tenant admin"


class ObjectStatus(models.TextChoices):
    """Lifecycle of anything the host realises (networks, instances).

    pending: saved, not yet realised (instances stay pending until their client holds its lease); active: the
    host matches the database; error: the last job failed (see status_reason); deleting: teardown requested.
    """

    PENDING = "pending", "Pending"
    ACTIVE = "active", "Active"
    ERROR = "error", "Error"
    DELETING = "deleting", "Deleting"


class LeaseState(models.TextChoices):
    ACTIVE = "active", "Active"
    RELEASED = "released", "Released"
    EXPIRED = "expired", "Expired"


class LeaseEventKind(models.TextChoices):
    ADD = "add", "Added"
    RENEW = "renew", "Renewed"
    RELEASE = "release", "Released"
    EXPIRE = "expire", "Expired"


class NodeState(models.TextChoices):
    """What an administrator (or, later, failure detection) says about a node; liveness is its heartbeat.

    up: takes new work while its heartbeat is fresh; down: known dead; drained: alive but takes no new work.
    """

    UP = "up", "Up"
    DOWN = "down", "Down"
    DRAINED = "drained", "Drained"


class AgentState(models.TextChoices):
    """A node as people see it: its :class:`NodeState` joined with its heartbeat (a silent ``up`` node is down
    before failure detection marks it so)."""

    LIVE = "live", "Live"
    DRAINING = "draining", "Draining"
    DOWN = "down", "Down"
