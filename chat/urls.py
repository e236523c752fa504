"""URL routes of the chat app's web UI: accounts, conversations, the data export."""

from django.urls import URLPattern, URLResolver, path

from chat import views, views_accounts

app_name = "chat"
urlpatterns: list[URLPattern | URLResolver] = [
    path("signup/", views_accounts.signup, name="signup"),
    path("login/", views_accounts.LoginView.as_view(), name="login"),
    path("logout/", views_accounts.LogoutView.as_view(), name="logout"),
    path(
        "password/change/",
        views_accounts.PasswordChangeView.as_view(),
        name="password-change",
    ),
    path(
        "password/change/done/",
        views_accounts.PasswordChangeDoneView.as_view(),
        name="password-change-done",
    ),
    path("conversations/", views.conversation_list, name="conversation-list"),
    path("conversations/new/", views.conversation_new, name="conversation-new"),
    path(
        "conversations/<int:pk>/",
        views.conversation_detail,
        name="conversation-detail",
    ),
    path(
        "conversations/<int:pk>/messages/",
        views.message_create,
        name="message-create",
    ),
    path(
        "conversations/<int:pk>/rename/",
        views.conversation_rename_view,
        name="conversation-rename",
    ),
    path(
        "conversations/<int:pk>/delete/",
        views.conversation_delete_view,
        name="conversation-delete",
    ),
    path("my-data/", views.data_export, name="data-export"),
]
