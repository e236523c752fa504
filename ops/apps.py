"""App config for ops: health, metrics, alerts, backups and jobs."""

from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"
