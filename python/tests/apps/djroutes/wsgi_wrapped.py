"""Django behind the wrappers corral looks through."""

import os

os.environ["DJANGO_SETTINGS_MODULE"] = "djroutes.settings"

from django.contrib.staticfiles.handlers import StaticFilesHandler  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402


class WhiteNoise:
    """Looks like whitenoise.WhiteNoise (which is not installed here)."""

    def __init__(self, application):
        self.application = application
        self.directories = [("/srv/assets", "/assets/")]
        self.files = {}

    def __call__(self, environ, start_response):
        return self.application(environ, start_response)


WhiteNoise.__module__ = "whitenoise.base"

whitenoised = WhiteNoise(get_wsgi_application())
static_handler = StaticFilesHandler(get_wsgi_application())
