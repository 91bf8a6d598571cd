"""Sign-in with a rate limit on attempts (``NETDASH_LOGIN_RATE`` per client IP and user name)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse

from tenants import ratelimit


class RateLimitedLoginView(auth_views.LoginView):
    """Django's LoginView; a POST over the limit is answered 429 without checking the password at all."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        username = str(request.POST.get("username", ""))[:150].strip().lower()
        # Keyed by IP *and* name: guessing one account is slowed down, while colleagues behind one NAT address
        # signing in to their own accounts do not lock each other out.
        ident = f"{request.META.get('REMOTE_ADDR', '')}|{username}"
        decision = ratelimit.hit("login", ident, settings.NETDASH_LOGIN_RATE)
        if decision.allowed:
            return super().post(request, *args, **kwargs)
        form = self.get_form_class()(request)
        form.full_clean()  # unbound: validates nothing, just gives the form an (empty) error dict
        form.cleaned_data = {}
        form.add_error(None, f"Too many sign-in attempts; try again in {decision.retry_after} seconds.")
        response = self.render_to_response(self.get_context_data(form=form), status=429)
        response["Retry-After"] = str(decision.retry_after)
        return response
