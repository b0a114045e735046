#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "billing.settings")
    # A checkout with no SECRET_KEY is a development machine: let manage.py run
    # there. Production sets SECRET_KEY, so DEBUG stays off unless set; the app
    # server (billing/wsgi.py) never takes this default.
    if not os.environ.get("SECRET_KEY"):
        os.environ.setdefault("DEBUG", "1")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
