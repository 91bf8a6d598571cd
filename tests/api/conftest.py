"""Fixtures for API tests: clients that authenticate the way real callers do (a Bearer token)."""

import pytest
from rest_framework.test import APIClient


@pytest.fixture
def bearer_client():
    """``bearer_client(user)`` → an APIClient sending ``Authorization: Bearer <new token of user>``."""
    from api import services

    def make(user):
        _, secret = services.api_token_create(user=user, name="tests")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        client.secret = secret
        return client

    return make
