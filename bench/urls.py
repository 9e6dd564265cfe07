"""The test project's URLs plus bench-only views (never part of ``realtime``)."""

from django.urls import path

from bench import views
from tests.project.urls import urlpatterns as test_urlpatterns

urlpatterns = [
    path("bench/stats/", views.stats),
    path("bench/reset/", views.reset),
    path("bench/noop/", views.noop),
    path("bench/naive/", views.NaiveGroupsStream.as_view()),
    path("bench/naive-listen/", views.NaiveListenStream.as_view()),
    path("bench/fat/", views.FatGroupsStream.as_view()),
    path("bench/present/<slug:room>/", views.PresentTab.as_view()),
    *test_urlpatterns,
]
