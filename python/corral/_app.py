"""Load the WSGI application named by a gunicorn-style app spec.

Accepted forms:

    module                  attribute ``app``, else ``application``
    module:name             an attribute; dotted paths (``module:obj.wsgi``) too
    module:factory()        call once; literal arguments only:
    module:factory('a', 2)  ``ast.literal_eval`` of each argument
    path/to/file.py[:name]  load the file as a module named after its stem,
                            with its directory on ``sys.path``
"""

import ast
import importlib
import importlib.util
import os
import sys

from . import AppImportError

DEFAULT_NAMES = ("app", "application")




def load_app(spec):
    """Import and return the WSGI callable named by ``spec``."""
    if not isinstance(spec, str) or not spec.strip():
        raise AppImportError("no application given (expected module:name)")
    # Module names and file paths cannot contain ':' in practice, while
    # factory arguments may: split at the first one.
    target, colon, expr = spec.strip().partition(":")
    target = target.strip()
    expr = expr.strip()
    if colon and not expr:
        raise AppImportError("nothing after ':' in %r" % spec)
    if _is_path(target):
        module = _load_file(target)
    else:
        module = importlib.import_module(target)
    if expr:
        return _resolve(module, target, expr)
    for name in DEFAULT_NAMES:
        obj = getattr(module, name, None)
        if obj is not None:
            return _check_callable(obj, "%s:%s" % (target, name))
    raise AppImportError(
        "failed to find 'app' or 'application' in %r; name the callable "
        "explicitly as %s:NAME" % (target, target)
    )


def _is_path(target):
    return target.endswith(".py") or "/" in target or os.sep in target


def _load_file(path):
    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise AppImportError("application file not found: %s" % path)
    directory, base = os.path.split(path)
    name = os.path.splitext(base)[0]
    # Importing a sibling module from the app file must work as it does
    # with `python file.py`.
    if directory not in sys.path:
        sys.path.insert(0, directory)
    existing = sys.modules.get(name)
    if existing is not None:
        if os.path.abspath(getattr(existing, "__file__", None) or "") == path:
            return existing
        raise AppImportError(
            "%s would be imported as module %r, which is already taken by %r; "
            "rename the file" % (path, name, existing)
        )
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    # Registered before running it, as the import system does, so the file
    # can be imported by name (pickle, circular imports) while it loads.
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _resolve(module, target, expr):
    try:
        node = ast.parse(expr, mode="eval").body
    except SyntaxError:
        raise AppImportError(
            "cannot parse %r as an attribute name or a factory call" % expr
        ) from None
    call = None
    if isinstance(node, ast.Call):
        call = node
        node = node.func
    names = _dotted_names(node)
    if names is None:
        raise AppImportError(
            "%r is neither an attribute name nor a call of one" % expr
        )
    obj = module
    for i, name in enumerate(names):
        try:
            obj = getattr(obj, name)
        except AttributeError:
            raise AppImportError(
                "failed to find attribute %r in %r"
                % (".".join(names[: i + 1]), target)
            ) from None
    where = "%s:%s" % (target, ".".join(names))
    if call is not None:
        args, kwargs = _literal_arguments(call, expr)
        if not callable(obj):
            raise AppImportError(
                "%s is a %s, not a factory that can be called"
                % (where, type(obj).__name__)
            )
        obj = obj(*args, **kwargs)
        where = "the result of %s:%s" % (target, expr)
    return _check_callable(obj, where)


def _dotted_names(node):
    names = []
    while isinstance(node, ast.Attribute):
        names.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    names.append(node.id)
    names.reverse()
    return names


def _literal_arguments(call, expr):
    try:
        args = [ast.literal_eval(arg) for arg in call.args]
        kwargs = {}
        for keyword in call.keywords:
            if keyword.arg is None:
                raise ValueError("**kwargs")
            kwargs[keyword.arg] = ast.literal_eval(keyword.value)
    except (ValueError, TypeError, SyntaxError):
        raise AppImportError(
            "factory arguments in %r must be Python literals" % expr
        ) from None
    return args, kwargs


def _check_callable(obj, where):
    if not callable(obj):
        raise AppImportError(
            "application object %s is not callable (it is a %s)"
            % (where, type(obj).__name__)
        )
    return obj
