"""URLs of the support desk: pages, their streams, and the commands."""

from django.urls import URLPattern, path

from tickets import commands, views

app_name = "tickets"
urlpatterns: list[URLPattern] = [
    path("desk/", views.DeskPage.as_view(), name="desk"),
    path("desk/stream/", views.DeskStream.as_view(), name="desk-stream"),
    path("my/", views.PortalPage.as_view(), name="portal"),
    path("my/stream/", views.PortalStream.as_view(), name="portal-stream"),
    path("tickets/new/", commands.CreateTicket.as_view(), name="create"),
    path("tickets/<int:pk>/status/", commands.UpdateStatus.as_view(), name="update-status"),
    path("tickets/<int:pk>/note/", commands.AddAgentNote.as_view(), name="agent-note"),
    path("tickets/<int:pk>/typing/", commands.NoteTyping.as_view(), name="note-typing"),
]
