"""URL routes of the ops app (filled in by the ops work)."""

from django.urls import URLPattern, URLResolver

app_name = "ops"
urlpatterns: list[URLPattern | URLResolver] = []
