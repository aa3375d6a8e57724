"""i18n_patterns with LocaleMiddleware; no staticfiles, no APPEND_SLASH."""

SECRET_KEY = "test-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = []
MIDDLEWARE = [
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
]
APPEND_SLASH = False
ROOT_URLCONF = "djroutes.urls_i18n"
DATABASES = {}
USE_I18N = True
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("fr", "French"), ("pt-br", "Brazilian Portuguese")]
USE_TZ = True
