"""Included under /polls/: path converters int and slug.

"boom/" comes before "<slug:name>/results/" only for readability; the two
cannot collide ("boom/" has no "results/" suffix).
"""

from django.urls import path

from . import views

app_name = "polls"

urlpatterns = [
    path("", views.poll_list, name="list"),
    path("boom/", views.boom, name="boom"),
    path("<int:question_id>/", views.detail, name="detail"),
    path("<slug:name>/results/", views.results, name="results"),
]
