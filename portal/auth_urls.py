"""Sign in / sign out / change password, mounted at ``accounts/`` without a namespace.

Why not ``include("django.contrib.auth.urls")``: its password-reset views send mail, and this deployment has no
outgoing mail configured — a reset request would fail with a 500. Users who forget their password ask an
administrator (``manage.py changepassword``).
"""

from django.contrib.auth import views as auth_views
from django.urls import path

from .auth import RateLimitedLoginView

urlpatterns = [
    path("login/", RateLimitedLoginView.as_view(template_name="portal/login.html", redirect_authenticated_user=True),
         name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("password_change/", auth_views.PasswordChangeView.as_view(template_name="portal/password_change.html"),
         name="password_change"),
    path("password_change/done/", auth_views.PasswordChangeDoneView.as_view(
        template_name="portal/password_change_done.html"), name="password_change_done"),
]
