"""Test settings: throw-away secrets per process, an encrypted file DB, fast hashing."""

import atexit
import os
import secrets
import shutil
import tempfile
from pathlib import Path

for _name in ("DATABASE_ENCRYPTION_KEY", "AUDIT_HMAC_KEY", "BACKUP_ENCRYPTION_KEY"):
    os.environ.setdefault(_name, secrets.token_hex(32))
os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", f"t1:{secrets.token_hex(32)}")
os.environ.setdefault("HEALTH_CHECK_TOKEN", secrets.token_urlsafe(24))
os.environ.setdefault("METRICS_TOKEN", secrets.token_urlsafe(24))
os.environ.setdefault("LOG_LEVEL", "DEBUG")
os.environ.setdefault("LOG_FORMAT", "text")

_TMP = tempfile.mkdtemp(prefix="stepsync-test-")
atexit.register(shutil.rmtree, _TMP, True)
os.environ.setdefault("DATABASE_NAME", os.path.join(_TMP, "stepsync.db"))
os.environ.setdefault("AUDIT_HEAD_EXPORT_PATH", os.path.join(_TMP, "audit_heads.jsonl"))

from stepsync.settings import *  # noqa: E402,F403
from stepsync.settings import DATABASES, MIDDLEWARE  # noqa: E402

TEST_TMP_DIR = _TMP
STATIC_ROOT = Path(_TMP) / "static"
os.makedirs(STATIC_ROOT, exist_ok=True)
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DATABASE_CHECKPOINT_SECONDS = 0.0  # in-process tests: SQLite's own checkpoints
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    # A file, not Django's shared in-memory DB, so that tests see real encryption.
    DATABASES["default"]["TEST"] = {"NAME": os.path.join(_TMP, "test.db")}
MIDDLEWARE = ["tests.phi_tripwire.ErrorBodyTripwireMiddleware", *MIDDLEWARE]
