"""The demo's URLs plus the reusable app's test views (tests/realtime/urls.py)."""

from config.urls import urlpatterns as demo_urlpatterns
from tests.realtime.urls import test_urlpatterns

urlpatterns = [*test_urlpatterns, *demo_urlpatterns]
