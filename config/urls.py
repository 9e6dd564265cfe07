"""URLs of the demo project."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import TemplateView

from config.operations import OperationsPage, OperationsStream
from realtime.prometheus import metrics_view


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    """Browsers ask for /favicon.ico on pages that name no icon (the task list examples)."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))


urlpatterns = [
    path("", TemplateView.as_view(template_name="home.html"), name="home"),
    path("favicon.ico", favicon),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # Prometheus: staff sessions, or REALTIME['METRICS_TOKEN'] as a bearer token.
    path("metrics", metrics_view, name="metrics"),
    path("ops/", OperationsPage.as_view(), name="operations"),
    path("ops/stream/", OperationsStream.as_view(), name="operations-stream"),
    path("", include("tickets.urls")),
    path("tasks/", include("examples.tasks.urls")),
]
