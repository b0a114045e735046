"""Settings of the processes a worker test starts (a Celery worker, the API server):
the test settings with a real Redis broker, the test's own queue (so concurrent
runs never take each other's tasks), and abandoned tasks redelivered within seconds
(`visibility_timeout`) instead of an hour."""

import os

_BROKER = os.environ["TEST_CELERY_BROKER_URL"]
_QUEUE = os.environ["TEST_CELERY_QUEUE"]

from tests.settings import *  # noqa: E402,F403

CELERY_BROKER_URL = _BROKER
CELERY_RESULT_BACKEND = _BROKER
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_DEFAULT_QUEUE = _QUEUE
CELERY_RESULT_EXTENDED = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 3,
    "unacked_restore_interval": 1,
    "unacked_restore_throttle": 1,
}
