"""Template tags other apps' pages use to show teaching panels without knowing how they are built.

``{% load teach %}{% teach_network_panel network %}`` on a network page, ``{% teach_instance_panel instance %}``
on an instance page. The caller has already checked the user may see the object (it is on their page).
"""

from __future__ import annotations

from django import template

from .. import selectors, services
from ..models import TargetKind
from ..targets import Target
from ..views import target_urls

register = template.Library()


@register.inclusion_tag("teach/includes/network_panel.html", takes_context=True)
def teach_network_panel(context, network):
    """Equivalent commands of the network (and its instances), with links to its namespaces."""
    user = context.get("user")
    blocks = selectors.network_commands(network)
    urls = target_urls(Target(TargetKind.DHCP, network))
    superuser = bool(user and user.is_superuser)
    return {
        "blocks": blocks, "count": selectors.command_count(blocks), "urls": urls,
        "segment_url": target_urls(Target(TargetKind.SEGMENT, network))["inspect"] if superuser else "",
        "shell_url": urls["shell"] if user is not None and services.shell_allowed(user) else "",
    }


@register.inclusion_tag("teach/includes/instance_panel.html", takes_context=True)
def teach_instance_panel(context, instance):
    """Equivalent commands of the instance (its network first), with links to inspect and compare it."""
    user = context.get("user")
    blocks = selectors.instance_commands(instance)
    target = Target(TargetKind.INSTANCE, instance.network, instance)
    urls = target_urls(target)
    return {
        "blocks": blocks, "count": selectors.command_count(blocks), "urls": urls, "key": target.key,
        "shell_url": urls["shell"] if user is not None and services.shell_allowed(user) else "",
    }
