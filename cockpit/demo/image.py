"""The demo service as Docker images, built offline from this machine's own files.

No registry is needed (none may be reachable): the image is one layer holding the system's
``/usr/bin/python3.11`` and ``/usr/lib/python3.11`` (without the test suite), the shared
libraries ``ldd`` names for the interpreter and every extension module, a static busybox
for a shell, and the packages the demo service imports (``cockpit`` included) under
``/app/site``. One image per demo version; they share the layer and differ only in their
config (the version is in the entrypoint, the env and a label).

Same inputs, same image id: the layer tar is written sorted with fixed owners and mtimes,
and the docker-archive around it (``manifest.json``, a config with a fixed ``created``) is
written by hand, then loaded with ``POST /images/load``. The archive is cached under the
user's cache dir, keyed by the inputs (paths, sizes, mtimes, modes): unchanged inputs are
not rebuilt, and images the daemon already holds under the expected ids are not reloaded.

Talks to the daemon over its HTTP API with the standard library, not the docker SDK: the
SDK is an adapter's dependency (cockpit[docker]) and this module belongs to the demo; the
``docker`` CLI is avoided too (it may be missing, or another version than the daemon's).

Image contract for the docker backend: entrypoint ``python3.11 -m cockpit.demo.service
--version V``; the command (default ``--port 8080``) is where a backend puts ``--port P
--env E``; the service handles SIGTERM itself (exits after in-flight requests).
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import re
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import platformdirs

REPOSITORY = "cockpit-demo"
DEMO_VERSIONS = ("1.0.0", "1.1.0", "1.2.0")
VERSION_LABEL = "cockpit.demo.version"
# Bumped when the layout or config changes, so old caches are not reused.
BUILDER_VERSION = "2"
# Every file and the config carry this instant: 2024-01-01T00:00:00Z.
EPOCH = 1704067200
CREATED = "2024-01-01T00:00:00Z"
PYTHON = Path("/usr/bin/python3.11")
STDLIB = Path("/usr/lib/python3.11")
BUSYBOX = Path("/usr/bin/busybox")
SITE = "app/site"
# Parts of the stdlib the service never imports: big, and not worth shipping.
STDLIB_SKIP = {
    "test",
    "idlelib",
    "tkinter",
    "turtledemo",
    "lib2to3",
    "ensurepip",
    "pydoc_data",
    "__pycache__",
}
# The modules the demo service imports, listed by the current interpreter: name, whether
# it is a package, and its file (None for built-in modules).
_LIST_IMPORTS = (
    "import sys, json, cockpit.demo.service;"
    "print(json.dumps(sorted(([m.__name__, hasattr(m, '__path__'), getattr(m, '__file__', None)]"
    " for m in list(sys.modules.values()) if isinstance(getattr(m, '__name__', None), str)), key=str)))"
)


class ImageBuildError(Exception):
    """The demo image cannot be built or loaded; ``str(err)`` says why in one line."""


@dataclass(frozen=True, slots=True)
class DemoImage:
    version: str
    tag: str  # cockpit-demo:1.0.0
    id: str  # sha256:...


@dataclass(frozen=True, slots=True)
class Entry:
    """One rootfs member: a regular file copied from ``source``, a directory, or a symlink."""

    name: str  # path inside the image, no leading slash
    source: Path | None = None
    link: str | None = None
    mode: int = 0o755


# --------------------------------------------------------------------------- inputs


def _under(path: Path, prefix: str) -> Iterator[Entry]:
    """The files of ``path`` (recursively, following no links into other trees) as ``prefix/...``."""
    for folder, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__" and not d.endswith(".dist-info"))
        rel = Path(folder).relative_to(path)
        for name in files:
            if name.endswith((".pyc", ".pyo")):
                continue
            full = Path(folder) / name
            yield Entry(f"{prefix}/{rel / name}".replace("/./", "/"), source=full)
        for name in dirs:
            full = Path(folder) / name
            if full.is_symlink():
                yield Entry(f"{prefix}/{rel / name}".replace("/./", "/"), link=os.readlink(full))


def _stdlib() -> Iterator[Entry]:
    for child in sorted(STDLIB.iterdir()):
        if child.name in STDLIB_SKIP or child.name.startswith("config-"):
            continue
        if child.is_dir():
            yield from _under(child, f"usr/lib/python3.11/{child.name}")
        elif child.suffix not in (".pyc",):
            yield Entry(f"usr/lib/python3.11/{child.name}", source=child)


def imported_modules() -> list[tuple[str, bool, str | None]]:
    """(name, is a package, file) of every module the demo service imports."""
    try:
        out = subprocess.run(
            [sys.executable, "-c", _LIST_IMPORTS], capture_output=True, text=True, check=True, timeout=60
        ).stdout
    except subprocess.CalledProcessError as err:
        raise ImageBuildError(
            f"cannot list the demo service's imports: {err.stderr.strip()[-300:]}"
        ) from None
    except (subprocess.SubprocessError, OSError) as err:
        raise ImageBuildError(f"cannot list the demo service's imports: {err}") from None
    return [(name, bool(package), file) for name, package, file in json.loads(out)]


def _site_packages(modules: Sequence[tuple[str, bool, str | None]]) -> Iterator[Entry]:
    """The top-level packages the demo service imports from outside the stdlib, whole."""
    for name, package, file in modules:
        if "." in name or name in sys.stdlib_module_names or name.startswith("_") or not file:
            continue
        path = Path(file)
        if package:
            yield from _under(path.parent, f"{SITE}/{name}")
            # Libraries a manylinux wheel vendors next to the package (e.g. ``aiohttp.libs``).
            libs = path.parent.parent / f"{name}.libs"
            if libs.is_dir():
                yield from _under(libs, f"{SITE}/{name}.libs")
        else:
            yield Entry(f"{SITE}/{path.name}", source=path)


def _module_path(name: str, package: bool) -> str:
    """Where the source of module ``name`` is in the image."""
    top = name.split(".")[0]
    base = "usr/lib/python3.11" if top in sys.stdlib_module_names else SITE
    return f"{base}/{name.replace('.', '/')}" + ("/__init__.py" if package else ".py")


# Compiles [source, pyc, name in the image] triples read as JSON from stdin, with the
# image's own interpreter. Unchecked-hash pycs: valid whatever the files' mtimes in the
# layer (all fixed), never compared with their source - which cannot change without the
# image being rebuilt.
_COMPILE = (
    "import json, sys, py_compile\n"
    "for src, pyc, shown in json.load(sys.stdin):\n"
    "    py_compile.compile(src, pyc, shown, doraise=True,"
    " invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)\n"
)


def bytecode(
    entries: Sequence[Entry], modules: Sequence[tuple[str, bool, str | None]], into: Path
) -> list[Entry]:
    """Byte-compiled copies of the imported modules the image holds (a container then
    starts ~0.4 s sooner: nothing to compile), written under ``into``."""
    sources = {e.name: e.source for e in entries if e.source is not None}
    jobs, made = [], []
    for name, package, _ in modules:
        image_path = _module_path(name, package)
        source = sources.get(image_path)
        if source is None:
            continue
        folder, stem = image_path.rsplit("/", 1)
        pyc = f"{folder}/__pycache__/{stem[:-3]}.cpython-311.pyc"
        jobs.append([str(source), str(into / pyc), "/" + image_path])
        made.append(Entry(pyc, source=into / pyc))
    try:
        subprocess.run(
            [str(PYTHON), "-I", "-c", _COMPILE],
            input=json.dumps(jobs),
            text=True,
            check=True,
            capture_output=True,
            timeout=300,
        )
    except subprocess.CalledProcessError as err:
        raise ImageBuildError(
            f"byte-compiling the demo's modules failed: {err.stderr.strip()[-300:]}"
        ) from None
    except (subprocess.SubprocessError, OSError) as err:
        raise ImageBuildError(f"byte-compiling the demo's modules failed: {err}") from None
    return made


_LDD_LINE = re.compile(r"(?:=>\s*)?(/\S+)\s+\(0x")


def _shared_libraries(binaries: Iterable[Path]) -> Iterator[Entry]:
    """The libraries ``ldd`` names, copied (not linked) to where the loader looks for them."""
    found: set[str] = set()
    for binary in binaries:
        try:
            out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=30).stdout
        except (subprocess.SubprocessError, OSError) as err:
            raise ImageBuildError(f"ldd {binary}: {err}") from None
        for line in out.splitlines():
            match = _LDD_LINE.search(line)
            if match and not match.group(1).startswith(str(binary.parent)):
                found.add(match.group(1))
    for lib in sorted(found):
        # /lib and /lib64 are links into /usr in the image (merged /usr, as on Debian 12).
        name = lib.lstrip("/")
        if name.startswith(("lib/", "lib64/")):
            name = "usr/" + name
        yield Entry(name, source=Path(os.path.realpath(lib)))


def _busybox() -> Iterator[Entry]:
    yield Entry("usr/bin/busybox", source=BUSYBOX)
    try:
        applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, timeout=30).stdout
    except (subprocess.SubprocessError, OSError) as err:
        raise ImageBuildError(f"busybox --list: {err}") from None
    for applet in sorted(set(applets.split())):
        # Debian's list names busybox itself: a link to itself would replace the binary.
        if applet != "busybox" and not applet.startswith("python"):
            yield Entry(f"usr/bin/{applet}", link="busybox")


def rootfs_entries(modules: Sequence[tuple[str, bool, str | None]] | None = None) -> list[Entry]:
    """Everything the image holds but bytecode, sorted by name, directories included;
    ``modules``: what :func:`imported_modules` says (asked when not given)."""
    if sys.version_info[:2] != (3, 11):
        # The packages are copied from this interpreter's environment: their extension
        # modules must be built for the image's Python 3.11.
        raise ImageBuildError(
            f"the demo image copies this environment's packages into a Python 3.11 image; "
            f"run the cockpit with Python 3.11 to build it (this is {sys.version.split()[0]})"
        )
    for needed in (PYTHON, STDLIB, BUSYBOX):
        if not needed.exists():
            raise ImageBuildError(
                f"{needed} is missing: the demo image is built from the system's Python 3.11 and a static "
                "busybox (Debian: apt-get install python3.11 busybox-static)"
            )
    entries = [
        Entry("usr/bin/python3.11", source=PYTHON),
        Entry("usr/bin/python3", link="python3.11"),
        Entry("bin", link="usr/bin"),
        Entry("sbin", link="usr/bin"),
        Entry("lib", link="usr/lib"),
        Entry("lib64", link="usr/lib64"),
        Entry("tmp", mode=0o1777),
        Entry("etc/passwd", source=None),  # written from _PASSWD
        Entry("etc/group", source=None),
    ]
    entries += _stdlib()
    entries += _site_packages(imported_modules() if modules is None else modules)
    entries += _busybox()
    extensions = [e.source for e in entries if e.source and e.source.suffix == ".so"]
    entries += _shared_libraries([PYTHON, *extensions])
    return with_parents(entries)


def with_parents(entries: Iterable[Entry]) -> list[Entry]:
    """``entries`` sorted by name, with every parent directory as an entry of its own, so
    the tar does not depend on extraction defaults."""
    by_name = {e.name: e for e in entries}
    for name in list(by_name):
        parent = Path(name).parent
        while str(parent) != ".":
            by_name.setdefault(str(parent), Entry(str(parent)))
            parent = parent.parent
    return [by_name[n] for n in sorted(by_name)]


_PASSWD = b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
_GROUP = b"root:x:0:\nnogroup:x:65534:\n"
_TEXT = {"etc/passwd": _PASSWD, "etc/group": _GROUP}


def fingerprint(entries: Sequence[Entry], versions: Sequence[str]) -> str:
    """What decides the build: the builder, the versions, every path with its size, mtime
    and mode. A changed input changes it; an unchanged tree is not read again."""
    digest = hashlib.sha256(f"{BUILDER_VERSION}|{','.join(versions)}\n".encode())
    for entry in entries:
        if entry.source is not None:
            st = entry.source.stat()
            digest.update(f"{entry.name}|{st.st_size}|{st.st_mtime_ns}|{st.st_mode}\n".encode())
        else:
            digest.update(f"{entry.name}|{entry.link}|{entry.mode}\n".encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------- the archive


def _tarinfo(name: str, kind: bytes, mode: int, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.linkname = kind, mode, size, link
    info.mtime, info.uid, info.gid, info.uname, info.gname = EPOCH, 0, 0, "", ""
    return info


def write_layer(entries: Sequence[Entry], out: io.BufferedIOBase) -> str:
    """Writes the rootfs tar to ``out``; returns its sha256 (the layer's diff id)."""
    hasher = _HashingWriter(out)
    with tarfile.open(fileobj=hasher, mode="w|", format=tarfile.GNU_FORMAT) as tar:
        for entry in entries:
            if entry.link is not None:
                tar.addfile(_tarinfo(entry.name, tarfile.SYMTYPE, 0o777, link=entry.link))
            elif entry.name in _TEXT:
                data = _TEXT[entry.name]
                tar.addfile(_tarinfo(entry.name, tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
            elif entry.source is not None:
                st = entry.source.stat()
                mode = 0o755 if st.st_mode & 0o111 else 0o644
                with entry.source.open("rb") as source:
                    tar.addfile(_tarinfo(entry.name, tarfile.REGTYPE, mode, st.st_size), source)
            else:
                tar.addfile(_tarinfo(entry.name, tarfile.DIRTYPE, entry.mode))
    return hasher.hexdigest()


class _HashingWriter(io.RawIOBase):
    def __init__(self, out: io.BufferedIOBase) -> None:
        self.out, self.sha = out, hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.sha.update(data)
        self.out.write(data)
        return len(data)

    def hexdigest(self) -> str:
        return self.sha.hexdigest()


def image_config(version: str, diff_id: str) -> bytes:
    """The image config, serialised once and for all (its sha256 is the image id)."""
    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": CREATED,
        "config": {
            "Entrypoint": ["/usr/bin/python3.11", "-m", "cockpit.demo.service", "--version", version],
            "Cmd": ["--port", "8080"],
            "Env": [
                "PATH=/usr/bin",
                f"PYTHONPATH=/{SITE}",
                "PYTHONUNBUFFERED=1",
                "PYTHONDONTWRITEBYTECODE=1",
                f"COCKPIT_DEMO_VERSION={version}",
            ],
            "Labels": {VERSION_LABEL: version, "org.opencontainers.image.version": version},
            "WorkingDir": "/",
            "StopSignal": "SIGTERM",
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
        "history": [{"created": CREATED, "created_by": f"cockpit.demo.image {BUILDER_VERSION}"}],
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def write_archive(
    entries: Sequence[Entry],
    versions: Sequence[str],
    path: Path,
    modules: Sequence[tuple[str, bool, str | None]] = (),
) -> dict[str, str]:
    """Writes a docker-archive of one image per version, with the bytecode of ``modules``;
    returns version -> image id."""
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        if modules:
            entries = with_parents([*entries, *bytecode(entries, modules, Path(scratch) / "pyc")])
        layer_path = Path(scratch) / "layer.tar"
        with layer_path.open("wb") as layer:
            diff_id = write_layer(entries, layer)
        configs = {v: image_config(v, diff_id) for v in versions}
        ids = {v: hashlib.sha256(c).hexdigest() for v, c in configs.items()}
        manifest = [
            {
                "Config": f"{ids[v]}.json",
                "RepoTags": [f"{REPOSITORY}:{v}"],
                "Layers": [f"{diff_id}/layer.tar"],
            }
            for v in versions
        ]
        partial = path.with_suffix(".partial")
        with tarfile.open(partial, "w", format=tarfile.GNU_FORMAT) as tar:
            tar.addfile(_tarinfo(diff_id, tarfile.DIRTYPE, 0o755))
            with layer_path.open("rb") as layer:
                size = layer_path.stat().st_size
                tar.addfile(_tarinfo(f"{diff_id}/layer.tar", tarfile.REGTYPE, 0o644, size), layer)
            for v in versions:
                tar.addfile(
                    _tarinfo(f"{ids[v]}.json", tarfile.REGTYPE, 0o644, len(configs[v])),
                    io.BytesIO(configs[v]),
                )
            data = json.dumps(manifest, sort_keys=True).encode()
            tar.addfile(_tarinfo("manifest.json", tarfile.REGTYPE, 0o644, len(data)), io.BytesIO(data))
        partial.replace(path)  # a build cut short never passes for a finished one
    return {v: f"sha256:{i}" for v, i in ids.items()}


# --------------------------------------------------------------------------- the daemon


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, socket_path: str, timeout: float) -> None:
        super().__init__("docker", timeout=timeout)
        self.socket_path = socket_path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.socket_path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def docker_host() -> str:
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


class DaemonClient:
    """The three calls the builder needs, over ``unix://`` or ``tcp://`` (no TLS)."""

    def __init__(self, host: str | None = None, timeout: float = 300.0) -> None:
        self.host = host or docker_host()
        url = urlsplit(self.host)
        self._connect: Callable[[], http.client.HTTPConnection]
        if url.scheme == "unix":
            self._connect = lambda: _UnixConnection(url.path, timeout)
        elif url.scheme in ("tcp", "http"):
            self._connect = lambda: http.client.HTTPConnection(
                url.hostname or "localhost", url.port or 2375, timeout=timeout
            )
        else:
            raise ImageBuildError(
                f"DOCKER_HOST {self.host!r}: only unix:// and tcp:// (without TLS) are supported"
            )

    def request(self, method: str, path: str, body: io.BufferedIOBase | None = None) -> tuple[int, bytes]:
        connection = self._connect()
        try:
            headers = {"Content-Type": "application/x-tar"} if body is not None else {}
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read()
        except OSError as err:
            raise ImageBuildError(f"no Docker daemon answers at {self.host}: {err.strerror or err}") from None
        finally:
            connection.close()

    def ping(self) -> None:
        status, body = self.request("GET", "/_ping")
        if status != 200:
            raise ImageBuildError(f"the Docker daemon at {self.host} answered {status}: {body[:200]!r}")

    def image_id(self, ref: str) -> str | None:
        status, body = self.request("GET", f"/images/{quote(ref, safe='')}/json")
        if status == 404:
            return None
        if status != 200:
            raise ImageBuildError(f"inspecting {ref}: the daemon answered {status}: {body[:200]!r}")
        return str(json.loads(body)["Id"])

    def load(self, archive: Path) -> None:
        with archive.open("rb") as body:
            status, answer = self.request("POST", "/images/load?quiet=1", body)
        # The daemon reports a failed load as 200 with an error message in the stream.
        if status != 200 or b'"error"' in answer:
            raise ImageBuildError(f"loading {archive.name}: the daemon answered {status}: {answer[:300]!r}")


# --------------------------------------------------------------------------- the cache


def cache_dir() -> Path:
    chosen = os.environ.get("COCKPIT_IMAGE_CACHE")
    return Path(chosen) if chosen else Path(platformdirs.user_cache_dir("cockpit")) / "images"


@dataclass(frozen=True, slots=True)
class BuildReport:
    images: dict[str, DemoImage]
    built: bool  # the archive was written (not found in the cache)
    loaded: bool  # the daemon was sent the archive (it lacked an image)
    seconds: float
    archive_bytes: int


def ensure_demo_images(
    host: str | None = None, versions: Sequence[str] = DEMO_VERSIONS
) -> dict[str, DemoImage]:
    """The demo images in the daemon at ``host`` (``DOCKER_HOST`` by default), built and
    loaded only if missing. Raises :class:`ImageBuildError` with the reason."""
    return build(host, versions).images


def build(host: str | None = None, versions: Sequence[str] = DEMO_VERSIONS) -> BuildReport:
    started = time.monotonic()
    client = DaemonClient(host)
    client.ping()  # fail on a missing daemon before minutes of work
    modules = imported_modules()
    entries = rootfs_entries(modules)
    key = fingerprint(entries, versions)
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    archive, ids_file = folder / f"demo-{key[:16]}.tar", folder / f"demo-{key[:16]}.json"
    built = False
    if archive.is_file() and ids_file.is_file():
        ids: dict[str, str] = json.loads(ids_file.read_text())
    else:
        for stale in folder.glob("demo-*"):  # one build kept: the images are ~60 MB
            stale.unlink(missing_ok=True)
        ids = write_archive(entries, versions, archive, modules)
        ids_file.write_text(json.dumps(ids))
        built = True
    images = {v: DemoImage(v, f"{REPOSITORY}:{v}", ids[v]) for v in versions}
    loaded = any(client.image_id(image.tag) != image.id for image in images.values())
    if loaded:
        client.load(archive)
        wrong = {i.tag: client.image_id(i.tag) for i in images.values() if client.image_id(i.tag) != i.id}
        if wrong:
            raise ImageBuildError(f"after loading, the daemon names other images: {wrong}")
    return BuildReport(images, built, loaded, time.monotonic() - started, archive.stat().st_size)


def main() -> None:
    """``python -m cockpit.demo.image``: build (or find) the images and print the figures."""
    try:
        report = build()
    except ImageBuildError as err:
        print(f"demo image: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    for image in report.images.values():
        print(f"{image.tag}  {image.id}")
    print(
        f"built={report.built} loaded={report.loaded} seconds={report.seconds:.2f} "
        f"archive={report.archive_bytes / 1e6:.1f} MB"
    )


if __name__ == "__main__":
    main()
