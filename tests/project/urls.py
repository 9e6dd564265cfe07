"""The demo's URLs plus test-only views."""

from django.urls import path

from config.urls import urlpatterns as demo_urlpatterns
from tests.realtime import views

urlpatterns = [
    path("test/ticks/", views.ticks, name="test-ticks"),
    path("test/groups/stream/", views.GroupsStream.as_view(), name="test-groups-stream"),
    path("test/groups/private/", views.PrivateGroupsStream.as_view(), name="test-private-stream"),
    path("test/groups/clock/", views.ClockStream.as_view(), name="test-clock-stream"),
    path("test/groups/add/", views.AddGroup.as_view(), name="test-add-group"),
    path("test/groups/add-later/", views.AddGroupLater.as_view(), name="test-add-group-later"),
    path("test/groups/add-private/", views.add_private_group, name="test-add-private"),
    path("test/rooms/<slug:room>/", views.RoomStream.as_view(), name="test-room-stream"),
    path("test/rooms/<slug:room>/state/", views.RoomState.as_view(), name="test-room-state"),
    *demo_urlpatterns,
]
