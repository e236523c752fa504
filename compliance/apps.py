"""App configs: compliance (audit trail, retention, incidents) and the admin site."""

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ComplianceConfig(AppConfig):
    name = "compliance"
    verbose_name = "Compliance"
    default = True

    def ready(self) -> None:
        from django.db.backends.signals import connection_created
        from django.db.models.signals import post_migrate

        from compliance import auth_events, roles
        from compliance.appendonly import register_sqlite_function

        auth_events.connect()
        connection_created.connect(
            register_sqlite_function, dispatch_uid="compliance.sqlite_function"
        )
        post_migrate.connect(roles.on_post_migrate, dispatch_uid="compliance.roles")


class StepSyncAdminConfig(admin_apps.AdminConfig):
    """Django's admin, with the site that enforces MFA for staff."""

    default = False
    default_site = "compliance.admin_site.StepSyncAdminSite"
