"""URLs of the django-eventstream peer: the stream, the command, a reset and counters."""

from django.urls import path

from bench.eventstream_app import views

urlpatterns = [
    path("events/", views.events),
    path("add/", views.add_group),
    path("reset/", views.reset),
    path("stats/", views.stats),
]
