"""URLs of the support desk."""

from django.urls import URLPattern

app_name = "tickets"
urlpatterns: list[URLPattern] = []
