"""URL routes of the chat app (filled in by the chat work)."""

from django.urls import URLPattern, URLResolver

app_name = "chat"
urlpatterns: list[URLPattern | URLResolver] = []
