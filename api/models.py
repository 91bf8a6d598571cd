"""API tokens: only a hash is stored; the secret is shown once, when it is created."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ApiToken(models.Model):
    """A personal access token for ``Authorization: Bearer <token>``.

    Why a hash and a prefix: a database leak must not hand out working tokens (tokens are long random strings,
    so a fast SHA-256 is enough — there is nothing to brute-force), while the prefix lets a user recognise which
    token a log line or a leaked value belongs to.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=64)
    prefix = models.CharField(max_length=16, help_text="The token's first characters, for recognising it.")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
