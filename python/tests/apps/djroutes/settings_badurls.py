"""A root URLconf that cannot be imported: extraction gives up, boot does
not."""

from .settings_i18n import *  # noqa: F401,F403

ROOT_URLCONF = "djroutes.no_such_urls"
