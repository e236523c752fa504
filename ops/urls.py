"""URL routes of the ops app: health probes and the Prometheus endpoint."""

from django.urls import path

from ops import views

app_name = "ops"
urlpatterns = [
    path("health/live", views.live, name="health-live"),
    path("health/ready", views.ready, name="health-ready"),
    path("health/", views.status, name="health"),
    path("metrics", views.metrics_view, name="metrics"),
]
