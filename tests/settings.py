"""Test settings: production's settings module, read with safe test values in the environment."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "test-secret-key-" + "x" * 48)
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("STATIC_MANIFEST", "0")
# Nothing a test writes lands in the checkout: media and static files go to a temporary folder.
_TMP = Path(tempfile.gettempdir())
os.environ.setdefault("MEDIA_ROOT", str(_TMP / "billing-test-media"))
os.environ.setdefault("STATIC_ROOT", str(_TMP / "billing-test-static"))
os.environ.pop("CELERY_BROKER_URL", None)

from billing.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests

# WhiteNoise warns on every request when STATIC_ROOT is missing; tests serve
# static files through the finders, so an empty folder is all it needs.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
