"""A Django project for route extraction tests (test_routes.py): every kind
of pattern corral reads. Several settings modules, one WSGI module each."""
