"""ASGI entry point of the example project: corral mysite.asgi:application
serves it with corral's ASGI workers (see docs/asgi.md)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mysite.settings")

application = get_asgi_application()
