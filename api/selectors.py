"""Reads for API tokens: a user sees and revokes only their own."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet

from .models import ApiToken
from .services import hash_token


def tokens_for_user(user: AbstractBaseUser) -> QuerySet[ApiToken]:
    """The user's own tokens, newest first (superusers too: a token is personal, not tenant data)."""
    if not user.is_authenticated:
        return ApiToken.objects.none()
    return ApiToken.objects.filter(user=user)


def token_for_secret(secret: str) -> ApiToken | None:
    """The active token whose hash matches ``secret``, with its user."""
    return (
        ApiToken.objects.select_related("user")
        .filter(token_hash=hash_token(secret), revoked_at=None)
        .first()
    )
