"""Read-only admin for the teaching audit logs (superusers review shell sessions and diagnostics here)."""

from django.contrib import admin

from .models import DiagnosticRun, ShellSession


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
