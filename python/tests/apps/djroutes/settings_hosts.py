"""A middleware that picks the URLconf per request (as django-hosts does)."""

from .settings_i18n import *  # noqa: F401,F403

MIDDLEWARE = ["djroutes.middleware.HostURLconf"]
