"""Imports a module that does not exist."""

import no_such_dependency_for_corral_tests  # noqa: F401
