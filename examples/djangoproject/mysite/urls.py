"""Root URLconf: a plain path, an include() and a regular expression."""

from django.urls import include, path, re_path

from polls import views

urlpatterns = [
    path("", views.index, name="index"),
    path("echo/", views.echo, name="echo"),
    path("polls/", include("polls.urls")),
    re_path(r"^archive/(?P<year>[0-9]{4})/$", views.archive, name="archive"),
]
