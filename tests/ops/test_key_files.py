"""`python -m stepsync.secrets init`: key files are created where configured and the
command names the files it wrote (never a value)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.ops.conftest import ROOT

SECRET_VARIABLES = (
    "SECRET_KEY",
    "DATABASE_ENCRYPTION_KEY",
    "AUDIT_HMAC_KEY",
    "BACKUP_ENCRYPTION_KEY",
    "FIELD_ENCRYPTION_KEYS",
)


def test_init_names_the_field_key_file_it_wrote(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}
    env.update(
        SECRET_KEY_FILE=str(tmp_path / "secret_key"),
        DATABASE_KEY_FILE=str(tmp_path / "database.key"),
        AUDIT_HMAC_KEY_FILE=str(tmp_path / "audit_hmac.key"),
        BACKUP_ENCRYPTION_KEY_FILE=str(tmp_path / "backup.key"),
        FIELD_ENCRYPTION_KEYS_FILE=str(tmp_path / "field_keys"),
    )

    done = subprocess.run(
        [sys.executable, "-m", "stepsync.secrets", "init"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert f"created {tmp_path / 'field_keys'} (mode 0600)" in done.stdout
    assert "var/field_keys" not in done.stdout
    key = (tmp_path / "field_keys").read_text().strip().split(":", 1)[1]
    assert key not in done.stdout
