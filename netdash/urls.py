"""Top-level URLs. Each interface app (portal pages, REST API, live view, teaching) brings its own urls."""

from django.apps import apps
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/django-rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
]
if apps.is_installed("api"):
    urlpatterns.append(path("api/v1/", include("api.urls")))
if apps.is_installed("live"):
    urlpatterns.append(path("live/", include("live.urls")))
if apps.is_installed("teach"):
    urlpatterns.append(path("teach/", include("teach.urls")))
if apps.is_installed("portal"):
    urlpatterns.append(path("accounts/", include("portal.auth_urls")))
    urlpatterns.append(path("", include("portal.urls")))
