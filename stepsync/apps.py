"""App config for the project package: registers the system checks."""

from django.apps import AppConfig


class StepSyncConfig(AppConfig):
    name = "stepsync"
    verbose_name = "Step Sync"

    def ready(self) -> None:
        from stepsync import checks  # noqa: F401  (registers the checks)
        from stepsync.db import pooling  # noqa: F401  (forks forget inherited pools)
