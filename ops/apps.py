"""App config for ops: health, metrics, alerts, backups and jobs."""

from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations"

    def ready(self) -> None:
        from ops import checks  # noqa: F401  (registers the system checks)
