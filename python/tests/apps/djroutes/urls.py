from django.conf.urls.static import static
from django.contrib import admin
from django.urls import URLPattern, include, path, re_path, register_converter
from django.views.decorators.common import no_append_slash

from . import views


class YearConverter:
    regex = "[0-9]{4}"

    def to_python(self, value):
        return int(value)

    def to_url(self, value):
        return "%04d" % value


class NotZeroYearConverter(YearConverter):
    # A lookahead: relaxed to [0-9]{4} for Go.
    regex = "(?!0000)[0-9]{4}"


register_converter(YearConverter, "year")
register_converter(NotZeroYearConverter, "nzyear")


class StartsWith:
    """A pattern class of its own (no regex): not expressible."""

    def __init__(self, text):
        self.text = text
        self.converters = {}

    def match(self, path):
        if path.startswith(self.text):
            return path[len(self.text) :], (), {}
        return None

    def check(self):
        return []

    def describe(self):
        return repr(self.text)

    def __str__(self):
        return self.text


item_patterns = [
    path("", views.ok, name="list"),
    path("<int:pk>/", views.ok, name="detail"),
]

shop_patterns = (
    [
        path("items/", include((item_patterns, "items"))),
        path("cart/", views.ok, name="cart"),
    ],
    "shop",
)

urlpatterns = [
    path("", views.ok, name="home"),
    path("str/<str:s>/", views.ok, name="str"),
    path("int/<int:n>/", views.ok, name="int"),
    path("slug/<slug:s>/", views.ok, name="slug"),
    path("uuid/<uuid:u>/", views.ok, name="uuid"),
    path("path/<path:p>", views.ok, name="path"),
    path("year/<year:y>/", views.ok, name="year"),
    path("nzyear/<nzyear:y>/", views.ok, name="nzyear"),
    path("shop/", include(shop_patterns, namespace="shop")),
    re_path(r"^re/(?P<year>[0-9]{4})/(?P<slug>[\w-]+)/$", views.ok, name="re"),
    re_path(r"^noend/(?P<n>\d+)", views.ok, name="noend"),
    re_path(r"tail/$", views.ok, name="tail"),
    re_path(r"^look/(?!admin)(?P<name>\w+)/$", views.ok, name="look"),
    re_path(r"^back/(?P<a>[a-z])(?P=a)/$", views.ok, name="back"),
    re_path(r"(?i)^ci/$", views.ok, name="ci"),
    re_path(
        r"^blog/(?P<lang>[a-z]{2})/",
        include(
            [
                path("", views.ok, name="blog"),
                path("<slug:s>/", views.ok, name="post"),
            ]
        ),
    ),
    path("noslash/", no_append_slash(views.ok), name="noslash"),
    path("custom/", include([URLPattern(StartsWith("x"), views.ok, name="custom")])),
    path("broken/", include("djroutes.empty_urls")),
    path("admin/", admin.site.urls),
] + static("/media/", document_root="/nonexistent")
