"""``Authorization: Bearer <token>`` for the REST API."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from . import selectors, services
from .models import ApiToken


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """Authenticate with a personal API token.

    Listed first among the API's authenticators so that an anonymous request gets ``401`` with a
    ``WWW-Authenticate: Bearer`` challenge (DRF takes the header from the first authenticator).
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[AbstractBaseUser, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if parts[0].lower() != self.keyword.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Invalid Authorization header: use 'Bearer <token>'.")
        token = selectors.token_for_secret(parts[1])
        if token is None or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        services.api_token_touch(token=token)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'
