"""URL routes of the chat JSON API, mounted at /api/."""

from django.urls import URLPattern, URLResolver, path

from chat import api, api_auth, api_messages

app_name = "chat_api"
urlpatterns: list[URLPattern | URLResolver] = [
    path("auth/register/", api_auth.register, name="register"),
    path("auth/token/", api_auth.token, name="token"),
    path("me/export/", api.MeExportView.as_view(), name="me-export"),
    path(
        "conversations/",
        api.ConversationListView.as_view(),
        name="conversation-list",
    ),
    path(
        "conversations/<int:pk>/",
        api.ConversationDetailView.as_view(),
        name="conversation-detail",
    ),
    path(
        "conversations/<int:pk>/export/",
        api.ConversationExportView.as_view(),
        name="conversation-export",
    ),
    path(
        "conversations/<int:pk>/messages/",
        # Async (JSON or SSE): no thread waits on the LLM. chat/api.py's DRF view
        # documents the same contract.
        api_messages.message_create,
        name="message-create",
    ),
]
