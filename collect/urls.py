from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from collect.api.operations import HealthzApi, MetricsApi, ReadyzApi

urlpatterns = [
    path("", include("collect.web.urls")),
    path("api/", include("collect.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # What an operator probes and scrapes (no token; /metrics may ask for one).
    path("healthz", HealthzApi.as_view(), name="healthz"),
    path("readyz", ReadyzApi.as_view(), name="readyz"),
    path("metrics", MetricsApi.as_view(), name="metrics"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
]

# Every error in the API's one JSON shape, whatever raised it.
handler400 = "collect.api.errors.bad_request"
handler403 = "collect.api.errors.permission_denied"
handler404 = "collect.api.errors.not_found"
handler500 = "collect.api.errors.server_error"
