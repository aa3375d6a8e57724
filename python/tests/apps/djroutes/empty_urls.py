"""An included URLconf whose urlpatterns is not a list: Django fails only
when a request reaches it; corral counts everything under it as a route."""

urlpatterns = 42
