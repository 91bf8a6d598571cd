"""Writes for API tokens: create (returns the secret once) and revoke."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from tenants.audit import audit_record
from tenants.validators import validate_display_name

from .models import ApiToken

TOKEN_PREFIX = "nd_"  # noqa: S105 - a recognisable prefix (for secret scanners), not a secret
MAX_ACTIVE_TOKENS = 20
# Only bump ``last_used_at`` this often: a write per request would serialise API traffic on SQLite.
LAST_USED_RESOLUTION_SECONDS = 60


def hash_token(token: str) -> str:
    """The stored form of a token (SHA-256 hex)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _described(token: ApiToken) -> str:
    """The audit detail of a token: whose it is and how its owner recognises it (never the secret)."""
    return f"{token.user} {token.prefix} {token.name}"


def api_token_create(*, user: AbstractBaseUser, name: str, actor: AbstractBaseUser | None = None
                     ) -> tuple[ApiToken, str]:
    """Create a token for ``user``; returns the row and the secret, which is never retrievable again."""
    name = (name or "").strip()
    try:
        validate_display_name(name)
    except ValidationError as exc:
        raise ValidationError({"name": exc.messages}) from None
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction.atomic():
        active = ApiToken.objects.select_for_update().filter(user=user, revoked_at=None)
        if len(active) >= MAX_ACTIVE_TOKENS:
            raise ValidationError(f"You already have {MAX_ACTIVE_TOKENS} active tokens; revoke one first.")
        token = ApiToken.objects.create(user=user, name=name, prefix=secret[:11], token_hash=hash_token(secret))
        audit_record(actor=actor or user, tenant=None, action="apitoken.create", obj=token, detail=_described(token))
    return token, secret


def api_token_revoke(*, token: ApiToken, actor: AbstractBaseUser | None = None) -> ApiToken:
    """Revoke a token; it stops authenticating immediately. Revoking twice is harmless."""
    with transaction.atomic():
        if ApiToken.objects.filter(pk=token.pk, revoked_at=None).update(revoked_at=timezone.now()):
            token.refresh_from_db()
            audit_record(actor=actor, tenant=None, action="apitoken.revoke", obj=token, detail=_described(token))
    return token


def api_token_touch(*, token: ApiToken) -> None:
    """Record that the token was used (at most once per ``LAST_USED_RESOLUTION_SECONDS``)."""
    now = timezone.now()
    if token.last_used_at and (now - token.last_used_at).total_seconds() < LAST_USED_RESOLUTION_SECONDS:
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.last_used_at = now
