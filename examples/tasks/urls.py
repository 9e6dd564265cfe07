"""URLs of the live task list."""

from django.urls import path

from examples.tasks import views

app_name = "tasks"
urlpatterns = [
    path("", views.index, name="index"),
    path("htmx/", views.htmx_index, name="htmx"),
    path("add/", views.AddTask.as_view(), name="add"),
    path("stream/", views.TaskStream.as_view(), name="stream"),
]
