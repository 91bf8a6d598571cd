"""Admin of the teaching tools: read-only audit logs (shell sessions, diagnostics), classes and running labs."""

from django.contrib import admin

from .models import Classroom, DiagnosticRun, Lab, ShellSession


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ShellSession)
class ShellSessionAdmin(ReadOnly):
    list_display = ["started_at", "username", "namespace", "ended_at", "end_reason"]
    search_fields = ["username", "namespace", "keystrokes"]


@admin.register(DiagnosticRun)
class DiagnosticRunAdmin(ReadOnly):
    list_display = ["created_at", "user", "namespace", "action", "status", "exit_code"]
    list_filter = ["action", "status"]


@admin.register(Classroom)
class ClassroomAdmin(admin.ModelAdmin):
    """Superusers create classes, name their instructors and learners, and set lab quota and lifetime."""

    list_display = ["name", "labs_enabled", "lab_quota", "lab_minutes"]
    filter_horizontal = ["instructors", "learners"]


@admin.register(Lab)
class LabAdmin(ReadOnly):
    """Running labs (read-only: a lab ends through the lab page or its expiry, which tear its tenants down)."""

    list_display = ["pk", "learner", "kind", "classroom", "created_at", "expires_at"]
    list_filter = ["kind"]

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # deleting the row would orphan its tenants; teach.services.lab_end tears them down
