from django.conf.urls.i18n import i18n_patterns
from django.urls import path
from django.utils.functional import lazy
from django.utils.translation import get_language

from . import views


def _contact():
    # What gettext_lazy would give with a French catalog.
    return {"fr": "contactez/"}.get(get_language(), "contact/")


contact = lazy(_contact, str)()

urlpatterns = [path("api/", views.ok, name="api")] + i18n_patterns(
    path("about/", views.ok, name="about"),
    path(contact, views.ok, name="contact"),
)
