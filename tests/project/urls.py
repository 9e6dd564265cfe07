"""The demo's URLs plus test-only views."""

from django.urls import path

from config.urls import urlpatterns as demo_urlpatterns
from tests.project import views

urlpatterns = [
    path("test/ticks/", views.ticks, name="test-ticks"),
    *demo_urlpatterns,
]
