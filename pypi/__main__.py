"""``python -m corral``: run the corral binary installed with this package.

Part of the corral-server wheel only (scripts/wheel adds it as
corral/__main__.py); the runtime the binary embeds does not carry it.
"""

import os
import sys


def find_corral():
    """The path of the corral executable that pip installed with the
    corral-server distribution this package belongs to, or None."""
    from importlib import metadata

    try:
        dist = metadata.distribution("corral-server")
    except metadata.PackageNotFoundError:
        dist = None
    candidates = []
    if dist is not None:
        # RECORD lists the binary wherever the install scheme put it
        # (a venv's bin/, ~/.local/bin, --prefix, --target).
        for f in dist.files or ():
            if f.name == "corral" and len(f.parts) > 1 and f.parts[-2] == "bin":
                candidates.append(str(f.locate()))
    import sysconfig

    candidates.append(os.path.join(sysconfig.get_path("scripts"), "corral"))
    for path in candidates:
        path = os.path.abspath(path)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def main():
    path = find_corral()
    if path is None:
        sys.stderr.write(
            "corral: the corral executable is not installed next to this "
            "Python (pip install corral-server installs it)\n"
        )
        return 1
    os.execv(path, [path] + sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
