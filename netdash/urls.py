"""Top-level URLs. Each interface app (portal pages, REST API, live view, teaching) brings its own urls."""

from django.contrib import admin
from django.urls import include, path

from . import ops_views

urlpatterns = [
    path("healthz", ops_views.healthz, name="healthz"),
    path("readyz", ops_views.readyz, name="readyz"),
    path("metrics", ops_views.metrics_view, name="metrics"),
    path("admin/django-rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("api.urls")),
    path("live/", include("live.urls")),
    path("teach/", include("teach.urls")),
    path("accounts/", include("portal.auth_urls")),
    path("", include("portal.urls")),
]
