"""Admin registrations of the compliance app (one module per concept)."""

from compliance import (
    admin_audit,  # noqa: F401
    admin_incidents,  # noqa: F401
    admin_retention,  # noqa: F401
)
