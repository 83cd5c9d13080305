"""The demo's SECRET_KEY file, var/secret-key: made once by `make run` (or rundemo) and read
by the settings when neither SECRET_KEY nor SECRET_KEY_FILE is set, so any manage.py command
run beside the demo works with DEBUG off. No Django imports: the Makefile runs this before
the settings can load."""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "var" / "secret-key"


def ensure_secret_key(path: Path = DEFAULT_PATH) -> bool:
    """Create the key file (mode 600) unless it already exists; True if it was made now."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two launchers at once cannot both write, and an existing key is never replaced.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(50) + "\n")
    return True


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PATH
    if ensure_secret_key(target):
        sys.stdout.write(f"Created {target} (mode 600): the demo's SECRET_KEY\n")
