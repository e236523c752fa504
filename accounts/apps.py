"""App config for accounts: the user model (case-insensitive unique usernames)."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"
