"""Schemathesis over the OpenAPI document: every operation, valid and schema-violating requests, no 5xx.

The app is called in-process through its WSGI handler (the same Django views daphne serves on loopback), with a
Bearer token of a tenant admin whose tenant owns a network, a subnet and an instance, so the generated requests
reach real objects as well as missing ones. Examples per operation and mode are kept small in CI
(``NETDASH_SOAK=1`` multiplies them). The figures (operations, cases, 5xx) are printed at the end of the run.
"""

from __future__ import annotations

import re

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from django.db import transaction
from django.urls import URLResolver, get_resolver
from hypothesis import HealthCheck, given, settings
from rest_framework.views import APIView
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from security_helpers import record, size

from api import services as token_services
from tenants import routers, services
from tenants.choices import Role

pytestmark = pytest.mark.django_db

EXAMPLES_PER_OPERATION = 12


@pytest.fixture
def wsgi_app():
    """The WSGI handler without closing the DB connection after each request (which would close the test's
    transaction); Django's test client does the same."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield get_wsgi_application()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def token(tenant_factory, member_factory):
    tenant = tenant_factory(name="Schema", slug="schema", quota_networks=10**6, quota_subnets=10**6,
                            quota_instances=10**6, quota_routers=10**6, quota_floating_ips=10**6)
    admin = member_factory(tenant, role=Role.ADMIN, username="schema-admin")
    network = services.network_create(tenant=tenant, name="schema-net", subnet={"cidr": "10.40.0.0/24"})
    instance = services.instance_create(network=network, hostname="vm-1")
    # A router with a gateway and an interface, and an associated floating IP: the fuzzer reaches real ones.
    external = routers.external_network_create(tenant=tenant_factory(slug="schema-ops"), name="public",
                                               subnet={"cidr": "203.0.113.0/24", "enable_dhcp": False})
    router = routers.router_create(tenant=tenant, name="schema-router", external_network=external)
    routers.router_interface_add(router=router, subnet=network.subnets.get())
    routers.floating_ip_associate(floating_ip=routers.floating_ip_allocate(tenant=tenant, external_network=external),
                                  instance=instance)
    _, secret = token_services.api_token_create(user=admin, name="schemathesis")
    return secret


def fuzz_operation(operation, mode: GenerationMode, headers: dict[str, str]) -> dict[str, int]:
    """Run one operation's generated cases in one mode; return counts (raises on a 5xx)."""
    counts = {"cases": 0, "answered_2xx": 0, "errors": 0}

    @settings(max_examples=size(EXAMPLES_PER_OPERATION), deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case):
        with transaction.atomic():  # each case starts from the same objects
            response = case.call(headers=headers)
            transaction.set_rollback(True)
        counts["cases"] += 1
        counts["answered_2xx"] += int(response.status_code < 300)
        counts["errors"] += int(response.status_code >= 500)
        case.validate_response(response, checks=[not_a_server_error])

    run()
    return counts


# Routes under api/v1/ that are not API operations: the schema document, its HTML docs page, DRF's browsable root.
NOT_OPERATIONS = {"schema", "docs", "api-root"}
_REGEX_KWARG = re.compile(r"\(\?P<(\w+)>[^)]*\)")


def _routes(patterns, prefix: str = ""):
    for pattern in patterns:
        text = prefix + str(pattern.pattern).lstrip("^").rstrip("$")
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, text)
        else:
            yield text, pattern


def url_conf_operations() -> set[str]:
    """``"METHOD /path/{kwarg}/"`` for every API operation the URL conf serves (format-suffix twins aside).

    Derived from the routes, not from the schema, so an endpoint left out of the OpenAPI document (and so out of
    schemathesis's reach) makes the exact count below fail instead of passing unfuzzed.
    """
    found = set()
    for route, pattern in _routes(get_resolver().url_patterns):
        cls = getattr(pattern.callback, "cls", None)
        suffixed = "format" in pattern.pattern.regex.groupindex
        if not route.startswith("api/") or pattern.name in NOT_OPERATIONS or suffixed:
            continue
        assert isinstance(cls, type) and issubclass(cls, APIView), f"{route}: not a DRF view; NOT_OPERATIONS?"
        # DRF adds "head" to a viewset's shared action map at its first GET; HEAD and OPTIONS are not operations.
        actions = getattr(pattern.callback, "actions", None)
        methods = [m for m in (actions or {m: m for m in cls.http_method_names if hasattr(cls, m)})
                   if m not in ("head", "options")]
        path = "/" + _REGEX_KWARG.sub(r"{\1}", route)
        found |= {f"{m.upper()} {path}" for m in methods}
    return found


def test_the_url_conf_count_sees_every_viewset_action():
    """Guard the derivation itself: the five resources' 22 operations of the API's first version, the 16 of
    routers (6 + add/remove-interface), floating IPs (6) and external networks (2), and the nodes' four (list,
    detail, drain, undrain)."""
    operations = url_conf_operations()
    assert len(operations) == 42, sorted(operations)
    assert "DELETE /api/v1/instances/{instance_id}/" in operations and "GET /api/v1/leases/" in operations
    assert "POST /api/v1/routers/{router_id}/add-interface/" in operations
    assert "PATCH /api/v1/floating-ips/{floating_ip_id}/" in operations
    assert "GET /api/v1/external-networks/{external_network_id}/" in operations
    assert "POST /api/v1/nodes/{node_id}/drain/" in operations


def test_no_operation_answers_5xx(token, wsgi_app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", wsgi_app)
    headers = {"Authorization": f"Bearer {token}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    # Every operation the URL conf serves is fuzzed, and nothing else: counted exactly, both ways.
    assert sorted(f"{op.method.upper()} {op.path}" for op in operations) == sorted(url_conf_operations())
    failures: list[str] = []
    answered = 0
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                counts = fuzz_operation(operation, mode, headers)
            except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report them all
                failures.append(f"{operation.label} [{mode.value}]: {str(exc)[:1500]}")
                continue
            answered += counts["answered_2xx"]
            record("schemathesis", examples=counts["cases"], **counts)
    record("schemathesis", operations=len(operations))
    assert not failures, "\n".join(failures)
    assert answered > len(operations), "the token did not authenticate"


@pytest.mark.parametrize("query", [
    "network=99999999999999999999", "subnet=99999999999999999999", "tenant=99999999999999999999",
    "network=٣", "limit=5081127458726459998208", "offset=5081127458726459998208", "limit=-1", "offset=x",
])
def test_what_schemathesis_found_is_a_4xx_or_an_empty_page(token, query):
    """Ids beyond the database's integer range in a filter, and a huge ?limit, were 500s."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    for resource in ("instances", "subnets", "leases", "networks"):
        response = client.get(f"/api/v1/{resource}/?{query}")
        assert response.status_code in (200, 400), (resource, query, response.status_code)
