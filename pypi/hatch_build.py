"""Hatchling hooks for the corral-server wheels (see pyproject.toml).

A wheel holds:

- ``corral/``: the worker runtime package, the very files the binary
  embeds (python/corral/**/*.py), so ``import corral`` outside a worker
  gives the same API (``corral.ban()`` returns False there), plus
  ``corral/__main__.py`` (this directory's ``__main__.py``) for
  ``python -m corral``;
- ``corral_server-VERSION.data/scripts/corral``: the static binary, which
  pip installs into the environment's ``bin/``, as ruff and uv do. From
  there corral picks that environment's Python for its workers.

The binary and the platform tag come from the environment, set by
scripts/wheel for each wheel it builds:

- ``CORRAL_WHEEL_BINARY``: the static Linux binary to ship;
- ``CORRAL_WHEEL_PLATFORM``: the wheel's platform tag, e.g.
  ``manylinux_2_17_x86_64.manylinux2014_x86_64``.

The project URLs are derived from the repository's address: the
``CORRAL_PROJECT_URL`` environment variable, else the ``origin`` remote
of the git checkout; without either the wheel has none (and says so).
"""

import os
import re
import subprocess
import sys

from hatchling.builders.hooks.plugin.interface import BuildHookInterface
from hatchling.metadata.plugin.interface import MetadataHookInterface

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
RUNTIME = os.path.join(REPO, "python", "corral")

# ELF e_machine values, for the check that the binary fits the tag.
_MACHINES = {"x86_64": 62, "aarch64": 183}


def _fail(message):
    raise RuntimeError("corral-server: " + message)


def _check_binary(path, platform):
    """Refuse a binary that is not a static 64-bit Linux ELF executable
    for the tag's architecture (a wrong or dynamic binary would install
    and then fail on the user's machine)."""
    arch = next((a for a in _MACHINES if platform.endswith("_" + a)), None)
    if arch is None:
        _fail("platform tag %r: not an x86_64 or aarch64 Linux tag" % platform)
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
            _fail("%s is not a 64-bit little-endian ELF file" % path)
        machine = int.from_bytes(head[18:20], "little")
        if machine != _MACHINES[arch]:
            _fail("%s is for ELF machine %d, the tag %s needs %d" % (path, machine, platform, _MACHINES[arch]))
        phoff = int.from_bytes(head[32:40], "little")
        phentsize = int.from_bytes(head[54:56], "little")
        phnum = int.from_bytes(head[56:58], "little")
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    for i in range(phnum):
        p_type = int.from_bytes(table[i * phentsize : i * phentsize + 4], "little")
        if p_type in (3, 2):  # PT_INTERP, PT_DYNAMIC
            _fail("%s is dynamically linked; build it with CGO_ENABLED=0" % path)


def _runtime_files():
    """python/corral's modules, as the binary embeds them: every .py file,
    __pycache__ left out."""
    files = {}
    for root, dirs, names in os.walk(RUNTIME):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(names):
            if name.endswith(".py"):
                path = os.path.join(root, name)
                files[path] = "corral/" + os.path.relpath(path, RUNTIME).replace(os.sep, "/")
    if "corral/__init__.py" not in files.values():
        _fail("no corral package at %s" % RUNTIME)
    return files


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version, build_data):
        if self.target_name != "wheel":
            _fail(
                "only wheels are built (corral is a Go program shipped as a "
                "prebuilt static binary): run scripts/wheel from a checkout"
            )
        if version == "editable":
            _fail("an editable install is not supported: run scripts/wheel")
        binary = os.environ.get("CORRAL_WHEEL_BINARY", "")
        platform = os.environ.get("CORRAL_WHEEL_PLATFORM", "")
        if not binary or not platform:
            _fail(
                "CORRAL_WHEEL_BINARY and CORRAL_WHEEL_PLATFORM are not set: "
                "build the wheels with scripts/wheel, which compiles corral "
                "with Go and sets them for each platform"
            )
        if not os.path.isfile(binary) or not os.access(binary, os.X_OK):
            _fail("CORRAL_WHEEL_BINARY=%s is not an executable file" % binary)
        _check_binary(binary, platform)

        build_data["pure_python"] = False
        build_data["tag"] = "py3-none-" + platform
        build_data["force_include"].update(_runtime_files())
        build_data["force_include"][os.path.join(HERE, "__main__.py")] = "corral/__main__.py"
        build_data["shared_scripts"][binary] = "corral"


def _https_url(remote):
    """https://HOST/PATH for a git remote address, or None for a local one."""
    remote = remote.strip()
    m = re.match(r"^(?:https?|ssh|git)://(?:[^@/]+@)?([^/:]+)(?::\d+)?/(.+?)(?:\.git)?/?$", remote)
    if not m:
        m = re.match(r"^(?:[^@/]+@)?([^/:]+):(?!/)(.+?)(?:\.git)?/?$", remote)
    if not m:
        return None
    return "https://%s/%s" % (m.group(1), m.group(2))


def project_url(root=REPO):
    url = os.environ.get("CORRAL_PROJECT_URL", "").strip()
    if url:
        return url.rstrip("/")
    try:
        out = subprocess.run(
            ["git", "-C", root, "remote", "get-url", "origin"],
            capture_output=True, text=True, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return _https_url(out.stdout) if out.returncode == 0 else None


class CustomMetadataHook(MetadataHookInterface):
    def update(self, metadata):
        url = project_url()
        if url is None:
            sys.stderr.write(
                "corral-server: no project URL (set CORRAL_PROJECT_URL or a git "
                "remote named origin); the wheel's metadata has none\n"
            )
            return
        metadata["urls"] = {
            "Homepage": url,
            "Documentation": url + "#readme",
            "Source": url,
            "Issues": url + "/issues",
        }
