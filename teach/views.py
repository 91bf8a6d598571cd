"""Pages of the teaching tools (mounted at /teach/). Thin: resolve the target for the user, call a service.

Every page that names an object resolves it through ``teach.targets`` (tenant selectors), so another tenant's
namespace is a 404 like any missing row.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from tenants import selectors as tenant_selectors
from tenants.choices import ObjectStatus
from tenants.hostspecs import names

from . import compare as cmp
from . import diagnostics, failover_lab, ipv6_lab, selectors, services
from .models import Lab, LabKind, TargetKind
from .targets import Target, resolve, resolve_key, targets_for_user


def _target(request: HttpRequest, kind: str, instance_id: int | None, network_id: int | None) -> Target:
    target = resolve(request.user, kind, instance_id if instance_id is not None else network_id)
    if target is None:
        raise Http404("No such namespace.")
    return target


def _inspect(target: Target) -> tuple[dict | None, str]:
    try:
        return services.inspect(target=target), ""
    except services.AgentUnavailable as exc:
        return None, str(exc)


def target_urls(target: Target) -> dict[str, str]:
    """Links of one namespace: inspector, websockets, shell, commands, and the portal page of its object."""
    if target.kind == TargetKind.INSTANCE:
        base, oid = "instance", target.instance.pk
        ws = f"/ws/teach/instances/{oid}/"
        portal = reverse("portal:instance-detail", args=[oid])
        commands = reverse("teach:instance-commands", args=[oid])
    else:
        base, oid = ("dhcp" if target.kind == TargetKind.DHCP else "segment"), target.network.pk
        ws = f"/ws/teach/networks/{oid}/{base}/"
        portal = target.network.get_absolute_url()
        commands = reverse("teach:network-commands", args=[oid])
    return {"inspect": reverse(f"teach:{base}-inspect", args=[oid]),
            "shell": reverse(f"teach:{base}-shell", args=[oid]),
            "diag_ws": ws + "diagnostics/", "shell_ws": ws + "shell/", "portal": portal, "commands": commands}


def _diag_context(target: Target) -> dict:
    return {"actions": diagnostics.actions_for(target.kind), "max_count": diagnostics.MAX_PING_COUNT,
            "suggest": target.network.subnets.order_by("id").values_list("dhcp_address", flat=True).first() or ""}


@login_required
def index(request: HttpRequest) -> HttpResponse:
    """Every namespace the user may inspect, the compare picker and the lab."""
    targets = [(t, target_urls(t)) for t in targets_for_user(request.user)]
    routers = (tenant_selectors.routers_for_user(request.user).exclude(status=ObjectStatus.DELETING)
               .select_related("tenant").order_by("tenant__name", "name"))
    return render(request, "teach/index.html", {
        "targets": targets, "routers": routers, "can_lab": selectors.can_start_lab(request.user),
        "shell_enabled": services.shell_allowed(request.user),
    })


@login_required
def inspect(request: HttpRequest, kind: str, instance_id: int | None = None,
            network_id: int | None = None) -> HttpResponse:
    """Live kernel state of one namespace (refreshed by the page), with diagnostics below."""
    target = _target(request, kind, instance_id, network_id)
    state, error = _inspect(target)
    context = {"target": target, "state": state, "error": error, "urls": target_urls(target),
               "shell_enabled": services.shell_allowed(request.user), **_diag_context(target)}
    if request.GET.get("fragment"):
        return render(request, "teach/includes/nsstate.html", context, status=503 if error else 200)
    return render(request, "teach/inspect.html", context)


@login_required
def router_inspect(request: HttpRequest, router_id: int) -> HttpResponse:
    """Live kernel state of a router: ports and addresses, routes, NAT rules with counters, conntrack entries."""
    router = get_object_or_404(tenant_selectors.routers_for_user(request.user), pk=router_id)
    try:
        state, error = services.router_inspect(router=router), ""
    except services.AgentUnavailable as exc:
        state, error = None, str(exc)
    context = {"router": router, "state": state, "error": error,
               "namespace": names().router_ns(router.kernel_id),
               "commands_url": reverse("teach:router-commands", args=[router.pk])}
    if request.GET.get("fragment"):
        return render(request, "teach/includes/router_state.html", context, status=503 if error else 200)
    return render(request, "teach/router_inspect.html", context)


@login_required
def compare(request: HttpRequest) -> HttpResponse:
    """Two namespaces side by side; rows that differ (or exist on one side only) are highlighted."""
    a_key, b_key = request.GET.get("a"), request.GET.get("b")
    choices = targets_for_user(request.user)
    if not a_key or not b_key:
        return render(request, "teach/compare.html", {"choices": choices, "a_key": a_key, "b_key": b_key})
    a, b = resolve_key(request.user, a_key), resolve_key(request.user, b_key)
    if a is None or b is None:
        raise Http404("No such namespace.")
    (sa, ea), (sb, eb) = _inspect(a), _inspect(b)
    findings: list[str] = []
    if sa and sb and not sa.get("error") and not sb.get("error"):
        sa, sb = cmp.compare(sa, sb)
        findings = cmp.summary(sa, sb)
    sides = [
        {"target": a, "state": sa, "error": ea, "urls": target_urls(a), **_diag_context(a)},
        {"target": b, "state": sb, "error": eb, "urls": target_urls(b), **_diag_context(b)},
    ]
    context = {"choices": choices, "a_key": a_key, "b_key": b_key, "sides": sides, "findings": findings}
    if request.GET.get("fragment"):
        return render(request, "teach/includes/compare_body.html", context)
    return render(request, "teach/compare.html", context)


def _commands_response(request: HttpRequest, blocks: list[selectors.CommandBlock], title: str,
                       filename: str) -> HttpResponse:
    if request.GET.get("format") == "sh":
        response = HttpResponse(selectors.as_script(blocks), content_type="text/x-shellscript; charset=utf-8")
        response["Content-Disposition"] = f'inline; filename="{filename}.sh"'
        return response
    return render(request, "teach/commands.html", {"blocks": blocks, "title": title})


@login_required
def network_commands(request: HttpRequest, network_id: int) -> HttpResponse:
    """The network's equivalent commands (network, then each instance), copyable and as a script."""
    network = get_object_or_404(tenant_selectors.networks_for_user(request.user), pk=network_id)
    return _commands_response(request, selectors.network_commands(network), f"network {network}",
                              f"network-{network.pk}")


@login_required
def router_commands(request: HttpRequest, router_id: int) -> HttpResponse:
    """The router's equivalent commands: the namespace, sysctls, a veth per port, addresses, route, ``nft -f``."""
    router = get_object_or_404(tenant_selectors.routers_for_user(request.user), pk=router_id)
    return _commands_response(request, selectors.router_commands(router), f"router {router.name}",
                              f"router-{router.pk}")


@login_required
def instance_commands(request: HttpRequest, instance_id: int) -> HttpResponse:
    """The instance's equivalent commands (its network first)."""
    instance = get_object_or_404(tenant_selectors.instances_for_user(request.user), pk=instance_id)
    return _commands_response(request, selectors.instance_commands(instance), f"instance {instance.hostname}",
                              f"instance-{instance.pk}")


@login_required
def shell(request: HttpRequest, kind: str, instance_id: int | None = None,
          network_id: int | None = None) -> HttpResponse:
    """A terminal in the namespace (superusers, and only when ``NETDASH_SHELL_ENABLED``)."""
    target = _target(request, kind, instance_id, network_id)
    if not services.shell_allowed(request.user):
        raise PermissionDenied("The namespace shell is for superusers and is off unless enabled in settings.")
    return render(request, "teach/shell.html", {
        "target": target, "urls": target_urls(target),
        "limit_minutes": round(settings.NETDASH_SHELL_SECONDS / 60, 1),
    })


@login_required
def labs(request: HttpRequest) -> HttpResponse:
    """The user's labs, the button that starts one, and (for instructors) their classes' lab switches."""
    return render(request, "teach/labs.html", {
        "labs": selectors.labs_for_user(request.user), "can_lab": selectors.can_start_lab(request.user),
        "classrooms": selectors.classrooms_taught(request.user),
        "failover_unavailable": services.failover_lab_unavailable(),
    })


@login_required
@require_POST
def lab_start(request: HttpRequest) -> HttpResponse:
    try:
        lab = services.lab_start(user=request.user, kind=request.POST.get("kind") or LabKind.OVERLAP)
    except (PermissionDenied, ValidationError) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect("teach:lab")
    return redirect("teach:lab-detail", lab_id=lab.pk)


def _lab(request: HttpRequest, lab_id: int) -> Lab:
    return get_object_or_404(selectors.labs_for_user(request.user), pk=lab_id)


@login_required
def lab_detail(request: HttpRequest, lab_id: int) -> HttpResponse:
    """The guided lab ("Overlapping IPs", or its routed form); ``static/teach/lab.js`` keeps it current from both
    tenants' sockets."""
    lab = _lab(request, lab_id)
    if lab.kind == LabKind.IPV6:
        return _ipv6_lab_detail(request, lab)
    if lab.kind == LabKind.FAILOVER:
        return _failover_lab_detail(request, lab)
    sides = selectors.lab_sides(lab)
    instances = [s.instance for s in sides if s.instance is not None]
    dhcp_address = next((s.network.subnets.order_by("id").values_list("dhcp_address", flat=True).first()
                         for s in sides if s.network), None) or ""
    context = {
        "lab": lab, "cidr": selectors.LAB_CIDR,
        "sides": [(s, target_urls(Target(TargetKind.INSTANCE, s.network, s.instance)) if s.instance else None,
                   target_urls(Target(TargetKind.DHCP, s.network)) if s.network else None) for s in sides],
        "compare_url": (f"{reverse('teach:compare')}?a=inst-{instances[0].pk}&b=inst-{instances[1].pk}"
                        if len(instances) == 2 else ""),
        "dhcp_address": dhcp_address,
        "lab_config": {
            "dhcp_address": dhcp_address,
            "tenants": [{"id": s.tenant.pk, "ws_path": f"/ws/live/tenants/{s.tenant.pk}/"} for s in sides],
            "instances": [i.pk for i in instances],
            "diag_ws": [f"/ws/teach/instances/{i.pk}/diagnostics/" for i in instances],
            "notice_url": reverse("teach:lab-notice", args=[lab.pk]),
            "routers": {s.router.pk: s.router.status for s in sides if s.router is not None},
        },
    }
    if lab.kind == LabKind.ROUTED:
        context["upstream"] = selectors.LAB_UPSTREAM
        context["external_cidr"] = selectors.LAB_EXTERNAL_CIDR
        return render(request, "teach/routed_lab.html", context)
    return render(request, "teach/lab.html", context)


def _ipv6_lab_detail(request: HttpRequest, lab: Lab) -> HttpResponse:
    """The three-modes lab: a column per mode, filled by ``static/teach/ipv6_lab.js`` from the lab's notice."""
    modes = selectors.lab_ipv6_modes(lab)
    columns = [(mode, cidr, side, target_urls(Target(TargetKind.INSTANCE, side.network, side.instance))
                if side.instance else None) for (mode, _name, cidr), side in zip(ipv6_lab.MODES, modes, strict=False)]
    instances = [s.instance for s in modes if s.instance is not None]
    tenants = {s.tenant.pk for s in modes}
    return render(request, "teach/ipv6_lab.html", {
        "lab": lab, "columns": columns, "modes": [m for m, _n, _c in ipv6_lab.MODES],
        "lab_config": {
            "tenants": [{"id": t, "ws_path": f"/ws/live/tenants/{t}/"} for t in sorted(tenants)],
            "instances": [i.pk for i in instances], "diag_ws": [],
            "notice_url": reverse("teach:lab-notice", args=[lab.pk]), "routers": {}, "refresh_on_lease": True,
        },
    })


def _failover_lab_detail(request: HttpRequest, lab: Lab) -> HttpResponse:
    """The failover lab: its network's servers and nodes, the fail/restore buttons, and what each node's kernel
    shows (``static/teach/failover_lab.js`` fills the node table from the lab's notice)."""
    network = services.failover_lab_network(lab)
    topology = services.failover_lab_topology(network) if network is not None else None
    instance = (network.instances.exclude(status=ObjectStatus.DELETING).order_by("pk").first()
                if network is not None else None)
    nodes = sorted(topology.vteps) if topology is not None else []
    return render(request, "teach/failover_lab.html", {
        "lab": lab, "network": network, "instance": instance, "topology": topology, "nodes": nodes,
        "cidr": failover_lab.CIDR, "owner": lab.learner_id == request.user.pk,
        "iurls": target_urls(Target(TargetKind.INSTANCE, network, instance)) if instance is not None else None,
        "lab_config": {
            "tenants": [{"id": t, "ws_path": f"/ws/live/tenants/{t}/"}
                        for t in sorted(lab.tenants.values_list("pk", flat=True))],
            "instances": [instance.pk] if instance is not None else [], "diag_ws": [],
            "notice_url": reverse("teach:lab-notice", args=[lab.pk]), "routers": {}, "refresh_on_lease": True,
            "sticky_steps": True,
        },
    })


def _failover_answer(request: HttpRequest, lab: Lab, action) -> HttpResponse:
    """Run ``action`` (fail or restore) for the lab's owner; JSON for the page's script, a redirect otherwise."""
    wants_json = "application/json" in request.headers.get("Accept", "")
    try:
        text = action(lab=lab, user=request.user)
    except ValidationError as exc:
        error = " ".join(exc.messages)
        if wants_json:
            return JsonResponse({"ok": False, "error": error}, status=409)
        messages.error(request, error)
        return redirect("teach:lab-detail", lab_id=lab.pk)
    if wants_json:
        return JsonResponse({"ok": True, "message": text})
    messages.success(request, text)
    return redirect("teach:lab-detail", lab_id=lab.pk)


def _fail(*, lab: Lab, user) -> str:
    server = services.failover_lab_fail(lab=lab, user=user)
    return f"Failing the DHCP server on {server.node}: its dnsmasq is killed, the client asked once to renew."


def _restore(*, lab: Lab, user) -> str:
    restored = services.failover_lab_restore(lab=lab, user=user)
    return (f"Restoring the DHCP server on {', '.join(s.node for s in restored)}." if restored
            else "No server of this lab is failed.")


@login_required
@require_POST
def lab_failover_fail(request: HttpRequest, lab_id: int) -> HttpResponse:
    """The learner fails the DHCP server that leased the instance's address (its owner only)."""
    return _failover_answer(request, _lab(request, lab_id), _fail)


@login_required
@require_POST
def lab_failover_restore(request: HttpRequest, lab_id: int) -> HttpResponse:
    """The learner restores the failed server: its node's agent starts its dnsmasq again."""
    return _failover_answer(request, _lab(request, lab_id), _restore)


@login_required
def lab_notice(request: HttpRequest, lab_id: int) -> JsonResponse:
    """What to notice now, read from both instance namespaces by the agent (the lab page asks after changes)."""
    return JsonResponse(services.lab_notice(lab=_lab(request, lab_id)))


@login_required
@require_POST
def lab_end(request: HttpRequest, lab_id: int) -> HttpResponse:
    services.lab_end(lab=_lab(request, lab_id), actor=request.user)
    messages.success(request, "Tearing the lab down: its namespaces and tenants are being removed.")
    return redirect("teach:lab")


@login_required
@require_POST
def classroom_labs(request: HttpRequest, classroom_id: int) -> HttpResponse:
    """An instructor turns labs on or off for their class."""
    classroom = get_object_or_404(selectors.classrooms_taught(request.user), pk=classroom_id)
    services.classroom_labs_set(classroom=classroom, enabled=request.POST.get("enabled") == "1", actor=request.user)
    messages.success(request, f"Labs are {'on' if classroom.labs_enabled else 'off'} for {classroom}.")
    return redirect("teach:lab")
