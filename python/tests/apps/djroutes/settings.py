"""Base settings: admin, staticfiles, DEBUG (so static() adds a pattern),
CommonMiddleware (APPEND_SLASH)."""

import os

SECRET_KEY = "test-only"
DEBUG = True
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "djroutes.urls"
DATABASES = {}
STATIC_URL = "/static/"
MEDIA_URL = "/media/"
MEDIA_ROOT = os.path.dirname(os.path.abspath(__file__))
USE_TZ = True
