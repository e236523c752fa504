"""ASGI entry point (uvicorn): verifies the database key before serving."""

import os
from concurrent.futures import ThreadPoolExecutor

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stepsync.settings")
application = get_asgi_application()

from stepsync.startup import refuse_to_start_on_fault  # noqa: E402

# The server may import this module inside its event loop, where Django refuses
# database work; the check runs in a thread of its own.
with ThreadPoolExecutor(max_workers=1) as _pool:
    _pool.submit(refuse_to_start_on_fault).result()
