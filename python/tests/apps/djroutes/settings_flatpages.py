"""FlatpageFallbackMiddleware answers any path from the database: the
resolver tree is not all the routes."""

from .settings_i18n import *  # noqa: F401,F403

INSTALLED_APPS = ["django.contrib.sites", "django.contrib.flatpages"]
SITE_ID = 1
MIDDLEWARE = ["django.contrib.flatpages.middleware.FlatpageFallbackMiddleware"]
