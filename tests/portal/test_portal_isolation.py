"""Tenant isolation over EVERY route: pages, API, and whatever other apps mount later.

The test walks ``get_resolver().url_patterns``, fills each route's path parameters with tenant B's objects and
requests it as a user of tenant A ("outsider") and anonymously. Rules:

* never a 5xx, and never B's data (``isolation_world.markers``) in a body or redirect;
* outsider + a route selecting B's object → 404 (405 is accepted: the method is refused before any lookup);
* anonymous → redirect to the login page (pages) or 401/403 (API), except the few ``PUBLIC_ROUTES``;
* afterwards none of B's rows changed.

Adding a route with a new URL kwarg makes ``test_every_route_kwarg_is_covered`` fail until the kwarg is added to
``OTHER_TENANT_KWARGS`` (an object of tenant B) or ``NEUTRAL_KWARGS`` (selects nothing tenant-specific).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone
from rest_framework.views import APIView

from api import services as token_services
from live import naming
from teach.models import Classroom, Lab
from tenants import nodes, routers, services
from tenants.models import FloatingIP, Instance, Lease, Membership, Network, Router, Subnet

pytestmark = pytest.mark.django_db

# URL kwarg name → tenant B's value for it. Name kwargs after the object they select (network_id, not pk), so one
# entry covers every app's routes for that object. Extend this when you add a route with a new kwarg.
OTHER_TENANT_KWARGS: dict[str, Callable[[SimpleNamespace], Any]] = {
    "tenant_id": lambda w: w.b.pk,
    "tenant_slug": lambda w: w.b.slug,
    "network_id": lambda w: w.b_network.pk,
    "subnet_id": lambda w: w.b_subnet.pk,
    "instance_id": lambda w: w.b_instance.pk,
    "lease_id": lambda w: w.b_lease.pk,
    "membership_id": lambda w: w.b_membership.pk,
    "token_id": lambda w: w.b_token.pk,
    "lab_id": lambda w: w.b_lab.pk,
    "classroom_id": lambda w: w.b_classroom.pk,
    "router_id": lambda w: w.b_router.pk,
    "floating_ip_id": lambda w: w.b_fip.pk,
}
# Kwargs that select nothing tenant-specific: any valid value will do.
NEUTRAL_KWARGS: dict[str, Callable[[SimpleNamespace], Any]] = {
    "format": lambda w: "json",
    "external_network_id": lambda w: w.external.pk,  # every tenant may see (never change) an external network
    # A node belongs to no tenant (and only superusers see one): a real row, so a leak would answer 200.
    "node_id": lambda w: nodes.node_register(name="isolation-walk").pk,
}
# Routes an anonymous client may open (they must still show nothing of tenant B).
# The operators' endpoints are for machines: /healthz and /readyz answer load balancers anonymously, /metrics a
# scraper on loopback (the test client's address) or with the token; tests/ops/test_metrics_web.py proves a remote
# or proxied scrape is refused. Here too they must show nothing of tenant B.
PUBLIC_ROUTES = {"login", "logout", "api:api-root", "api:schema", "api:docs", "healthz", "readyz", "metrics"}
# /readyz answers 503 when a dependency is missing (no agent runs here): that is its answer, not a crash.
NOT_READY_ROUTES = {"readyz"}


def server_error(route: Route, status: int) -> bool:
    """A 5xx that is a failure (a readiness route's 503 is its "not ready" answer)."""
    return status >= 500 and not (status == 503 and route.name in NOT_READY_ROUTES)
# Staff-only third-party routes, covered by ``test_staff_routes_send_anonymous_users_to_login`` instead.
STAFF_PREFIXES = ("admin/",)

METHODS_PAGE = ("get", "post")
METHODS_API = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Route:
    """One URL pattern, flattened: its full route text, qualified name, kwarg names and view."""

    route: str
    name: str | None
    kwargs: frozenset[str]
    callback: Callable[..., Any]

    @property
    def is_api(self) -> bool:
        cls = getattr(self.callback, "cls", None)
        return isinstance(cls, type) and issubclass(cls, APIView)

    @property
    def is_staff(self) -> bool:
        return self.route.lstrip("^").startswith(STAFF_PREFIXES)


def walk(patterns: list[Any], prefix: str = "", namespace: str = "",
         kwargs: frozenset[str] = frozenset()) -> Iterator[Route]:
    """Every leaf pattern under ``patterns`` with the route text and kwargs of its ancestors."""
    for pattern in patterns:
        here = kwargs | frozenset(pattern.pattern.regex.groupindex)
        text = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            ns = namespace
            if pattern.namespace:
                ns = f"{namespace}:{pattern.namespace}" if namespace else pattern.namespace
            yield from walk(pattern.url_patterns, text, ns, here)
        elif isinstance(pattern, URLPattern):
            name = f"{namespace}:{pattern.name}" if namespace and pattern.name else pattern.name
            yield Route(route=text, name=name, kwargs=here, callback=pattern.callback)


def all_routes() -> list[Route]:
    return list(walk(get_resolver().url_patterns))


def tenant_routes() -> list[Route]:
    return [r for r in all_routes() if not r.is_staff]


@pytest.fixture
def world(isolation_world):
    """Tenant B additionally owns an API token (of B's user); A owns a subnet and an instance of its own, so A's
    pages can be asked about B's ids. B's markers also name B's user, kernel ids and namespaces."""
    w = isolation_world
    w.b_token, _ = token_services.api_token_create(user=w.beta, name="beta-secret-token")
    # B's user runs a lab in tenant B and teaches a class with labs off (A's user learns in it: still no switch).
    w.b_lab = Lab.objects.create(learner=w.beta, expires_at=timezone.now() + timedelta(hours=1))
    w.b_lab.tenants.add(w.b)
    w.b_classroom = Classroom.objects.create(name="beta-secret-class")
    w.b_classroom.instructors.add(w.beta)
    w.b_classroom.learners.add(w.alpha)
    w.a_subnet = w.a_network.subnets.get()
    w.a_instance = services.instance_create(network=w.a_network, hostname="alpha-vm")
    # B's router (gateway on an external network of the operators', B's subnet attached) and an associated FIP.
    operators = services.tenant_create(name="Operators", slug="operators")
    w.external = routers.external_network_create(tenant=operators, name="public",
                                                 subnet={"cidr": "203.0.113.0/24", "enable_dhcp": False})
    w.b_router = routers.router_create(tenant=w.b, name="beta-secret-router", external_network=w.external)
    routers.router_interface_add(router=w.b_router, subnet=w.b_subnet)
    w.b_fip = routers.floating_ip_allocate(tenant=w.b, external_network=w.external)
    routers.floating_ip_associate(floating_ip=w.b_fip, instance=w.b_instance)
    w.b_router.refresh_from_db()
    w.markers = [*w.markers, w.beta.username, w.b_network.kernel_id, w.b_instance.kernel_id,
                 naming.dhcp_namespace(w.b_network.kernel_id), naming.instance_namespace(w.b_instance.kernel_id),
                 w.b_router.kernel_id, w.b_router.external_ip, w.b_fip.address]
    return w


def url_for(route: Route, world: SimpleNamespace) -> str:
    values = {}
    for kwarg in route.kwargs:
        producer = OTHER_TENANT_KWARGS.get(kwarg) or NEUTRAL_KWARGS[kwarg]
        values[kwarg] = producer(world)
    return reverse(route.name, kwargs=values)


def snapshot(world: SimpleNamespace) -> dict[str, Any]:
    """Everything of tenant B that a request could change."""
    return {
        "networks": list(Network.objects.filter(tenant=world.b).values("id", "name", "status")),
        "subnets": list(Subnet.objects.filter(network__tenant=world.b).values()),
        "instances": list(Instance.objects.filter(network__tenant=world.b).values("id", "ip_address", "status",
                                                                                    "fixed_ip")),
        "leases": list(Lease.objects.filter(subnet__network__tenant=world.b).values("id", "state")),
        "members": list(Membership.objects.filter(tenant=world.b).values("id", "user_id", "role")),
        "token": type(world.b_token).objects.filter(pk=world.b_token.pk).values("revoked_at").get(),
        "labs": list(Lab.objects.filter(learner=world.beta).values("id", "expires_at")),
        "classrooms": list(Classroom.objects.filter(pk=world.b_classroom.pk).values("id", "labs_enabled")),
        "routers": list(Router.objects.filter(tenant=world.b).values("id", "status", "external_ip",
                                                                       "interfaces__subnet")),
        "floating_ips": list(FloatingIP.objects.filter(tenant=world.b).values("id", "address", "instance")),
    }


def request(client: Client, method: str, url: str, api: bool):
    """Send ``method`` with an empty body; exceptions are returned, not raised, so every route gets reported."""
    try:
        if api and method != "get":
            return getattr(client, method)(url, data="{}", content_type="application/json")
        return getattr(client, method)(url, {} if method in ("get", "post") else "")
    except Exception as exc:  # noqa: BLE001 - a crash is a finding like any other
        return exc


def leaks(response, markers: list[str], url: str) -> list[str]:
    """Markers of tenant B in the body or redirect; the login redirect's ``?next=<url we asked for>`` is no leak."""
    location = response.get("Location", "").replace(quote(url), "").replace(url, "")
    text = response.content.decode(errors="replace") + location
    return [m for m in markers if m in text]


# --- tests ---------------------------------------------------------------------------------------------

def test_every_route_kwarg_is_covered():
    """A new route whose kwargs this test does not know fails here: add them to the maps above."""
    known = set(OTHER_TENANT_KWARGS) | set(NEUTRAL_KWARGS)
    problems = []
    for route in tenant_routes():
        if route.name is None:
            problems.append(f"{route.route}: unnamed route (name it so it can be reversed and tested)")
        for kwarg in sorted(route.kwargs - known):
            problems.append(f"{route.route}: kwarg {kwarg!r} is not in OTHER_TENANT_KWARGS or NEUTRAL_KWARGS")
    assert not problems, "\n".join(problems)


def test_enumeration_sees_the_routes_it_should():
    """Guard against a walker bug silently testing nothing."""
    names = {r.name for r in tenant_routes()}
    for expected in ("portal:network-detail", "portal:member-remove", "portal:token-revoke", "api:network-detail",
                     "api:lease-detail", "api:tenant-detail", "teach:lab-detail", "teach:lab-end",
                     "teach:classroom-labs", "api:router-detail", "api:router-add-interface",
                     "api:floating-ip-detail", "api:external-network-detail", "login"):
        assert expected in names
    assert any(r.is_api for r in tenant_routes())


def test_outsider_never_sees_or_changes_another_tenants_objects(client, world):
    before = snapshot(world)
    failures = []
    for route in tenant_routes():
        if route.name is None or route.kwargs - set(OTHER_TENANT_KWARGS) - set(NEUTRAL_KWARGS):
            continue  # reported by test_every_route_kwarg_is_covered
        url = url_for(route, world)
        selects_b = bool(route.kwargs & set(OTHER_TENANT_KWARGS))
        for method in METHODS_API if route.is_api else METHODS_PAGE:
            client.force_login(world.alpha)  # again: the walk also POSTs to logout
            response = request(client, method, url, route.is_api)
            where = f"{method.upper()} {url} ({route.name})"
            if isinstance(response, Exception):
                failures.append(f"{where}: raised {type(response).__name__}: {response}")
                continue
            if server_error(route, response.status_code):
                failures.append(f"{where}: {response.status_code}")
            elif selects_b and response.status_code not in (404, 405):
                failures.append(f"{where}: {response.status_code}, expected 404 for another tenant's object")
            if found := leaks(response, world.markers, url):
                failures.append(f"{where}: {response.status_code} shows tenant B's data {found}")
    assert snapshot(world) == before, "an outsider's request changed tenant B's data"
    assert not failures, "\n".join(failures)


# Query parameters that select objects, anywhere: the API's filters, the teaching compare's two sides. Each is
# sent alone with one of tenant B's values; an outsider must get nothing of B back for any of them.
OTHER_TENANT_FILTERS: dict[str, Callable[[SimpleNamespace], list[Any]]] = {
    "network": lambda w: [w.b_network.pk],
    "subnet": lambda w: [w.b_subnet.pk],
    "instance": lambda w: [w.b_instance.pk],
    "lease": lambda w: [w.b_lease.pk],
    "external_network": lambda w: [w.external.pk],  # A's routers on it: none (B's router is there)
    "tenant": lambda w: [w.b.pk, w.b.slug],
    "a": lambda w: [f"inst-{w.b_instance.pk}", f"dhcp-{w.b_network.pk}", f"seg-{w.b_network.pk}"],
    "b": lambda w: [f"inst-{w.b_instance.pk}", f"dhcp-{w.b_network.pk}"],
}
# URL kwarg → tenant A's own object, so A's pages can be asked about B's ids too ("A's network, B's subnet").
OWN_KWARGS: dict[str, Callable[[SimpleNamespace], Any]] = {
    "tenant_id": lambda w: w.a.pk,
    "tenant_slug": lambda w: w.a.slug,
    "network_id": lambda w: w.a_network.pk,
    "subnet_id": lambda w: w.a_subnet.pk,
    "instance_id": lambda w: w.a_instance.pk,
    **NEUTRAL_KWARGS,
}


def asks_the_agent(route: Route) -> bool:
    """The namespace inspectors of A's own objects wait up to 5 s for an agent (none runs here) and read no
    filter; with B's objects they are in the outsider walk above."""
    return (route.name or "").startswith("teach:") and (route.name or "").endswith("-inspect")


def filtered_urls(world: SimpleNamespace) -> Iterator[tuple[Route, str]]:
    """Every GET-able route of A's (no kwargs, or kwargs naming A's objects), once per filter value of B's."""
    for route in tenant_routes():
        if route.name is None or route.kwargs - set(OWN_KWARGS) or (route.kwargs and asks_the_agent(route)):
            continue
        base = reverse(route.name, kwargs={k: OWN_KWARGS[k](world) for k in route.kwargs})
        for param, values in OTHER_TENANT_FILTERS.items():
            for value in values(world):
                yield route, f"{base}?{param}={quote(str(value))}"
        if "compare" in (route.name or ""):
            yield route, f"{base}?a=inst-{world.a_instance.pk}&b=inst-{world.b_instance.pk}"


def rows(response) -> list[Any] | None:
    """The rows of a JSON list answer (paginated or not); None for anything else."""
    if "json" not in response.get("Content-Type", ""):
        return None
    body = response.json()
    if isinstance(body, dict) and isinstance(body.get("results"), list):
        return body["results"]
    return body if isinstance(body, list) else None


def declared_filters(client: Client) -> dict[str, set[str]]:
    """API path → the query parameters its OpenAPI operation declares (whatever implements them)."""
    schema = client.get(reverse("api:schema")).json()
    return {path: {p["name"] for p in op.get("get", {}).get("parameters", []) if p.get("in") == "query"}
            for path, op in schema["paths"].items()}


def test_filters_naming_another_tenants_objects_return_nothing_of_it(client, world):
    """A declared filter given one of B's ids lists zero rows; any other parameter is ignored or refused, and
    nothing anywhere shows B's markers."""
    before = snapshot(world)
    failures = []
    checked = filtered = 0
    client.force_login(world.alpha)
    declared = declared_filters(client)
    for route, url in filtered_urls(world):
        response = request(client, "get", url, route.is_api)
        where = f"GET {url} ({route.name})"
        if isinstance(response, Exception):
            failures.append(f"{where}: raised {type(response).__name__}: {response}")
            continue
        checked += 1
        if server_error(route, response.status_code):
            failures.append(f"{where}: {response.status_code}")
        if found := leaks(response, world.markers, url):
            failures.append(f"{where}: {response.status_code} shows tenant B's data {found}")
        path, _, query = url.partition("?")
        if query.partition("=")[0] not in declared.get(re.sub(r"\.json$", "/", path), set()):
            continue
        filtered += 1
        if response.status_code == 200 and rows(response):  # A's own rows filtered by one of B's ids: none
            failures.append(f"{where}: {len(rows(response))} rows, expected 0")
    assert snapshot(world) == before
    assert checked > 100 and filtered > 20, (checked, filtered)  # guard against a walk that tests nothing
    assert not failures, "\n".join(failures)


def test_the_filter_walk_reaches_the_filtered_lists_and_compare(world):
    """Guard the walk: the API lists and the compare page are asked with every filter."""
    urls = {url for _, url in filtered_urls(world)}
    for expected in (f"/api/v1/instances/?subnet={world.b_subnet.pk}",
                     f"/api/v1/leases/?instance={world.b_instance.pk}",
                     f"/api/v1/networks/?tenant={world.b.slug}", f"/api/v1/subnets/?network={world.b_network.pk}",
                     f"/api/v1/routers/?tenant={world.b.pk}", f"/api/v1/floating-ips/?instance={world.b_instance.pk}",
                     f"/api/v1/routers/?external_network={world.external.pk}"):
        assert expected in urls, expected
    assert any("?a=inst-" in u and "compare" in u for u in urls)


def test_filters_select_the_callers_own_rows(client, world):
    """The same filters with A's own ids do return A's rows: the zero rows above are the tenant scoping, not a
    filter that never matches."""
    client.force_login(world.alpha)
    for url in (f"/api/v1/instances/?network={world.a_network.pk}", f"/api/v1/instances/?subnet={world.a_subnet.pk}",
                f"/api/v1/subnets/?network={world.a_network.pk}", f"/api/v1/networks/?tenant={world.a.slug}"):
        assert rows(client.get(url)), url


def test_anonymous_gets_login_or_401(client, world):
    before = snapshot(world)
    login_url = reverse("login")
    failures = []
    for route in tenant_routes():
        if route.name is None or route.kwargs - set(OTHER_TENANT_KWARGS) - set(NEUTRAL_KWARGS):
            continue
        url = url_for(route, world)
        for method in METHODS_API if route.is_api else METHODS_PAGE:
            response = request(client, method, url, route.is_api)
            where = f"{method.upper()} {url} ({route.name})"
            if isinstance(response, Exception):
                failures.append(f"{where}: raised {type(response).__name__}: {response}")
                continue
            status = response.status_code
            if found := leaks(response, world.markers, url):
                failures.append(f"{where}: {status} shows tenant B's data {found}")
            if server_error(route, status):
                failures.append(f"{where}: {status}")
            elif route.name in PUBLIC_ROUTES:
                continue
            elif route.is_api and status not in (401, 403, 405):
                failures.append(f"{where}: {status}, expected 401/403")
            elif not route.is_api and not (status == 302 and response["Location"].startswith(login_url)) \
                    and status != 405:
                failures.append(f"{where}: {status}, expected a redirect to {login_url}")
    assert snapshot(world) == before
    assert not failures, "\n".join(failures)


def test_api_anonymous_gets_a_bearer_challenge(client, world):
    response = client.get(reverse("api:network-list"))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_outsider_with_a_token_gets_404_for_another_tenants_objects(bearer_client, world):
    """The same rule through Bearer auth (the walk above uses the session)."""
    api = bearer_client(world.alpha)
    for name, kwarg, value in (("api:network-detail", "network_id", world.b_network.pk),
                               ("api:subnet-detail", "subnet_id", world.b_subnet.pk),
                               ("api:instance-detail", "instance_id", world.b_instance.pk),
                               ("api:lease-detail", "lease_id", world.b_lease.pk),
                               ("api:tenant-detail", "tenant_id", world.b.pk),
                               ("api:router-detail", "router_id", world.b_router.pk),
                               ("api:floating-ip-detail", "floating_ip_id", world.b_fip.pk)):
        url = reverse(name, kwargs={kwarg: value})
        assert api.get(url).status_code == 404
        assert api.delete(url).status_code in (404, 405)
    for name in ("api:network-list", "api:subnet-list", "api:instance-list", "api:lease-list", "api:tenant-list",
                 "api:router-list", "api:floating-ip-list", "api:external-network-list"):
        body = api.get(reverse(name)).content.decode()
        assert not any(m in body for m in world.markers), name
    # Writes that reference B's objects by id are refused as "does not exist".
    response = api.post(reverse("api:subnet-list"), {"network": world.b_network.pk, "cidr": "10.50.0.0/24"},
                        format="json")
    assert response.status_code == 400 and "does not exist" in response.json()["network"][0]
    response = api.post(reverse("api:instance-list"), {"network": world.a_network.pk, "subnet": world.b_subnet.pk,
                                                       "hostname": "sneaky"}, format="json")
    assert response.status_code == 400 and "does not exist" in response.json()["subnet"][0]
    response = api.post(reverse("api:network-list"), {"name": "x", "tenant": world.b.slug}, format="json")
    assert response.status_code == 400


def _staff_pages(client, *, skip: tuple[str, ...] = ()):
    """``(route, url, response or exception)`` for every staff-only page (admin/, django-rq) a URL can be built for."""
    for route in all_routes():
        if not route.is_staff or route.name is None or route.name in skip:
            continue
        url = None
        for candidate in ("1", "tenants", "x"):
            try:
                url = reverse(route.name, kwargs=dict.fromkeys(route.kwargs, candidate))
                break
            except Exception:  # noqa: BLE001, S112 - try the next candidate value
                continue
        if url is not None:
            yield route, url, request(client, "get", url, api=False)


def _not_a_login_redirect(url: str, response) -> str | None:
    if response.status_code == 302 and "login" not in response["Location"]:
        return f"GET {url}: redirected to {response['Location']}, not a login page"
    return None


def test_staff_routes_send_anonymous_users_to_login(client):
    """admin/ and django-rq (admin/django-rq/) are staff-only: anonymous users are sent to a login page."""
    failures = []
    checked = 0
    for route, url, response in _staff_pages(client):
        checked += 1
        if isinstance(response, Exception):
            failures.append(f"GET {url}: raised {response!r}")
        elif route.name in ("admin:login", "admin:logout"):
            assert response.status_code in (200, 302, 405)
        elif wrong := _not_a_login_redirect(url, response):
            failures.append(wrong)
        elif response.status_code not in (302, 401, 403, 404, 405):
            failures.append(f"GET {url} ({route.name}): {response.status_code}")
    assert checked > 10
    assert not failures, "\n".join(failures)


def test_staff_routes_refuse_a_signed_in_tenant_admin(client, world):
    """A tenant admin is no staff member: every admin/ page (and django-rq's) redirects to a login page or
    refuses — never its content."""
    client.force_login(world.alpha)
    failures = []
    checked = 0
    for route, url, response in _staff_pages(client, skip=("admin:login", "admin:logout")):
        checked += 1
        if isinstance(response, Exception):
            failures.append(f"GET {url}: raised {response!r}")
            continue
        if wrong := _not_a_login_redirect(url, response):
            failures.append(wrong)
        elif response.status_code not in (302, 401, 403, 404, 405):
            failures.append(f"GET {url} ({route.name}): {response.status_code}")
        if found := leaks(response, world.markers, url):
            failures.append(f"GET {url}: shows tenant B's data {found}")
    assert checked > 10
    assert not failures, "\n".join(failures)
