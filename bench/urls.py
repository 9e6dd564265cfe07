"""The test project's URLs plus bench-only views (never part of ``realtime``)."""

from django.urls import path

from bench import views
from bench.admin_site import site as per_user_admin
from tests.project.urls import urlpatterns as test_urlpatterns

urlpatterns = [
    path("bench/stats/", views.stats),
    path("bench/reset/", views.reset),
    path("bench/noop/", views.noop),
    path("bench/noop-command/", views.NoopCommand.as_view()),
    path("bench/naive/", views.NaiveGroupsStream.as_view()),
    path("bench/naive-listen/", views.NaiveListenStream.as_view()),
    path("bench/fat/", views.FatGroupsStream.as_view()),
    path("bench/present/<slug:room>/", views.PresentTab.as_view()),
    path("bench/admin-setup/", views.admin_setup),
    path("bench/admin-save/", views.admin_save),
    # The live admin rendering per user (bench.live_admin compares it with the shared renders).
    path("bench/admin/", per_user_admin.urls),
    *test_urlpatterns,
]
