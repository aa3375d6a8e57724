# corral worker bootstrap, run by the master as `python -c "<this file>"`
# with the data socket on fd 3 and the control socket on fd 4. It reads the
# BOOT frame, serves the `corral` package from the zip inside it (nothing is
# written to disk) and hands over to corral._worker.main. See PROTOCOL.md.
import sys


def _boot():
    import importlib.machinery
    import importlib.util
    import io
    import json
    import socket
    import struct
    import zipfile

    data = socket.socket(fileno=3)
    control = socket.socket(fileno=4)
    data.setblocking(True)

    def recv_exactly(n):
        # Never more than asked: what follows BOOT belongs to the runtime.
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = data.recv_into(view[got:])
            if not k:
                sys.exit(70)  # the master went away before BOOT was complete
            got += k
        return bytes(buf)

    kind, flags, reserved, rid, length = struct.unpack("!BBHII", recv_exactly(12))
    if kind != 0x01 or flags or reserved or rid or not 4 <= length <= 1 << 20:
        sys.stderr.write("corral boot: expected a BOOT frame\n")
        sys.exit(70)
    payload = recv_exactly(length)
    try:
        n = int.from_bytes(payload[:4], "big")
        config = json.loads(payload[4 : 4 + n].decode("utf-8"))
        with zipfile.ZipFile(io.BytesIO(payload[4 + n :])) as archive:
            files = {
                name: archive.read(name)
                for name in archive.namelist()
                if name.startswith("corral/") and name.endswith(".py")
            }
        if "corral/__init__.py" not in files or not isinstance(config, dict):
            raise ValueError("no corral/__init__.py in the archive")
    except Exception as exc:
        sys.stderr.write("corral boot: malformed BOOT frame: %r\n" % (exc,))
        sys.exit(70)

    class Importer:
        """Finds and loads corral.* from the in-memory archive."""

        def find_spec(self, fullname, path=None, target=None):
            if fullname != "corral" and not fullname.startswith("corral."):
                return None
            base = fullname.replace(".", "/")
            package = base + "/__init__.py" in files
            name = base + "/__init__.py" if package else base + ".py"
            if name not in files:
                return None
            spec = importlib.machinery.ModuleSpec(
                fullname, self, origin="<corral>/" + name, is_package=package
            )
            spec.has_location = True  # sets __file__ to the origin
            return spec

        def create_module(self, spec):
            return None

        def exec_module(self, module):
            exec(self.get_code(module.__name__), module.__dict__)

        def _name(self, fullname):
            base = fullname.replace(".", "/")
            return base + "/__init__.py" if base + "/__init__.py" in files else base + ".py"

        def get_source(self, fullname):
            # linecache asks for this, so tracebacks show the lines.
            return importlib.util.decode_source(files[self._name(fullname)])

        def get_code(self, fullname):
            filename = "<corral>/" + self._name(fullname)
            return compile(self.get_source(fullname), filename, "exec", dont_inherit=True)

        def is_package(self, fullname):
            return self._name(fullname).endswith("/__init__.py")

    sys.meta_path.insert(0, Importer())
    import corral._worker

    return corral._worker.main(data, control, config)


sys.exit(_boot())
