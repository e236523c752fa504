"""WSGI entry point (kept for tools that need it); the product serves over ASGI."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stepsync.settings")
application = get_wsgi_application()
