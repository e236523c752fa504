"""Root URL configuration; each app mounts its own urls module here."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from stepsync import views

handler400 = "stepsync.views.bad_request"
handler403 = "stepsync.views.permission_denied"
handler404 = "stepsync.views.page_not_found"
handler500 = "stepsync.views.server_error"

urlpatterns = [
    path("", views.home, name="home"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/", include("chat.api_urls")),
    path("", include("ops.urls")),
    path("", include("chat.urls")),
]
