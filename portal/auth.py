"""Sign-in with a rate limit on attempts (``NETDASH_LOGIN_RATE`` per client IP and user name)."""

from __future__ import annotations

import hashlib
import math

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse

from tenants.ratelimit import FailOpenRateThrottle


class LoginThrottle(FailOpenRateThrottle):
    """Sign-in attempts keyed by IP *and* name: guessing one account is slowed down, while colleagues behind one
    NAT address signing in to their own accounts do not lock each other out."""

    scope = "login"
    rate_setting = "NETDASH_LOGIN_RATE"

    def get_cache_key(self, request: HttpRequest, view: object) -> str:
        username = str(request.POST.get("username", ""))[:150].strip().lower()
        # REMOTE_ADDR, not DRF's get_ident(): that trusts a client's X-Forwarded-For unless NUM_PROXIES is set,
        # and a made-up header per attempt would dodge the limit. Hashed: names may hold any character.
        ident = hashlib.sha256(f"{request.META.get('REMOTE_ADDR', '')}|{username}".encode()).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}


class RateLimitedLoginView(auth_views.LoginView):
    """Django's LoginView; a POST over the limit is answered 429 without checking the password at all."""

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        throttle = LoginThrottle()
        if throttle.allow_request(request, self):
            return super().post(request, *args, **kwargs)
        retry_after = max(1, math.ceil(throttle.wait() or 0))
        form = self.get_form_class()(request)
        form.full_clean()  # unbound: validates nothing, just gives the form an (empty) error dict
        form.cleaned_data = {}
        form.add_error(None, f"Too many sign-in attempts; try again in {retry_after} seconds.")
        response = self.render_to_response(self.get_context_data(form=form), status=429)
        response["Retry-After"] = str(retry_after)
        return response
