"""WSGI entry point for gunicorn."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# The ZIP index (leads.geo.zip_index) is built on first use (~0.75 s): pay that at start-up, not on a request.
from leads.geo import lookup_zip  # noqa: E402

lookup_zip("10001")
