"""Settings for the demo project: the smallest real Django configuration.

Demo values only. A real deployment reads SECRET_KEY from the environment and
lists its host names in ALLOWED_HOSTS.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")

# Off, so errors look as they would in production: a plain 500 page, and the
# traceback goes to the server's error log instead of the client.
DEBUG = os.environ.get("DJANGO_DEBUG") == "1"

# Any Host header, so the demo answers on 127.0.0.1:<any port>.
ALLOWED_HOSTS = ["*"]

# No models, no sessions, no admin: nothing needs a database, so none is
# configured and no migration has to run before the first request.
INSTALLED_APPS = [
    "polls",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]

ROOT_URLCONF = "mysite.urls"
WSGI_APPLICATION = "mysite.wsgi.application"

DATABASES = {}

USE_TZ = True
TIME_ZONE = "UTC"

# Unhandled exceptions are logged to stderr ("django.request" logger), which
# is what a WSGI server captures as its error log.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"django": {"handlers": ["stderr"], "level": "WARNING"}},
}
