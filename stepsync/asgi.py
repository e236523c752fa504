"""ASGI entry point (uvicorn): verifies the database key before serving.

The handler lends each request a reused thread (stepsync.asgi_handler), so that
database connections persist across requests.
"""

import gc
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "stepsync.settings")
django.setup(set_prefix=False)

from django.conf import settings  # noqa: E402

from stepsync.asgi_handler import (  # noqa: E402
    ThreadLeasingASGIHandler,
    connection_checks_at_request_end,
)
from stepsync.db.sqlcipher import checkpointer  # noqa: E402
from stepsync.startup import refuse_to_start_on_fault  # noqa: E402
from stepsync.warmup import warm  # noqa: E402

application = ThreadLeasingASGIHandler()
connection_checks_at_request_end()  # request_started then needs no thread hop

# The server may import this module inside its event loop, where Django refuses
# database work; the check runs in a thread of its own.
with ThreadPoolExecutor(max_workers=1) as _pool:
    _pool.submit(refuse_to_start_on_fault).result()

# WAL checkpoints from a thread of their own, not inside a request's commit.
checkpointer.start(settings.DATABASE_CHECKPOINT_SECONDS)

# Measured with make bench-load (llm-300): with 5 ms a thread holding SQLite's
# write lock waits for the GIL between its statements while every other writer
# waits for it (GIL_SWITCH_INTERVAL_MS in .env.example).
sys.setswitchinterval(settings.GIL_SWITCH_INTERVAL_MS / 1000)

# The URLconf and the LLM transport now, not in the first requests' time.
warm()

# Everything loaded so far lives as long as the process: the collector no longer
# walks it (a full collection of it took ~80 ms with the GIL held, a stall for
# every request of the worker).
gc.freeze()
