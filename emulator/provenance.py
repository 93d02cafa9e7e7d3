"""Provenance and safe writing of result files.

Every result file is written whole or not at all: to a temporary name in the same folder,
flushed, then renamed over the target (rename is atomic on POSIX). Every CSV starts with
``#`` lines saying what made it: vemu's version, the git revision, the engine's build, the
seed, the options and a hash of every model file read (taken before the runs and checked
again when the file is written: a model edited while the runs went is an error, not a
provenance line that names the new file beside results of the old).
"""

from __future__ import annotations

import csv
import errno
import functools
import hashlib
import io
import json
import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from . import __version__
from ._core import EmulatorError
from .model import BUNDLED_MODELS_DIR, MODELS_DIR


def git_revision() -> str:
    """The checkout's commit (12 digits, ``-dirty`` if tracked code or models differ from
    it), or ``unknown``: also where the package is not the top of a git work tree (an
    installed copy inside some other repository, say a project's ``.venv``, is not that
    repository's commit)."""
    root = Path(__file__).resolve().parent.parent
    try:
        top = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel"], capture_output=True,
                             text=True, timeout=5).stdout.strip()
        if not top or Path(top).resolve() != root:
            return "unknown"
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=5)
        rev = out.stdout.strip()
        if not rev:
            return "unknown"
        # dirty: tracked code or models differ from HEAD; results/ is left out, since it is what
        # `vemu reproduce` is writing (its earlier files would otherwise mark the later ones)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no", "--",
                                ".", ":(exclude)results"], capture_output=True, text=True, timeout=5).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def model_hashes(names: Iterable[tuple[str, str]]) -> dict[str, str]:
    """sha256 (first 12 hex digits) of each bundled model file, keyed 'kind/name'."""
    from .model import KIND_DIRS
    out = {}
    for kind, name in sorted(set(names)):
        p = MODELS_DIR / KIND_DIRS[kind] / f"{name}.toml"
        out[f"{KIND_DIRS[kind]}/{name}"] = hashlib.sha256(p.read_bytes()).hexdigest()[:12] if p.is_file() else "inline"
    return out


@functools.lru_cache(maxsize=1)
def engine_build() -> str:
    """The engine's version and the first 12 hex digits of the sha256 of the built library:
    an editable install whose engine was not rebuilt after a pull runs old C under a clean
    git revision, and only this line tells."""
    from . import _native
    from ._core import VERSION

    return f"{VERSION} {hashlib.sha256(Path(_native.__file__).read_bytes()).hexdigest()[:12]}"


def provenance(options: Mapping[str, Any], models: Iterable[tuple[str, str]] = (),
               since: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``#`` lines of a result file. ``since``: the model hashes taken (by
    :func:`model_hashes`, of these models or more) before the runs; a file that has changed since raises
    :class:`ModelsChanged` (the runs read one version, or a mixture, and the line would name
    another), naming the file."""
    import numpy

    hashes = model_hashes(models)
    if since is not None:
        changed = sorted(k for k in hashes if k in since and hashes[k] != since[k])
        if changed:
            raise ModelsChanged(changed)
    prov = {
        "vemu_version": __version__,
        "git_revision": git_revision(),
        "engine": engine_build(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "machine": f"{platform.machine()} {platform.system()} {os.cpu_count()} cpus",
        "options": dict(options),
        "models": hashes,
    }
    if MODELS_DIR.resolve() != BUNDLED_MODELS_DIR.resolve():  # VEMU_MODELS: the hashes are of that tree's files
        prov["models_dir"] = str(MODELS_DIR)
    return prov


class ModelsChanged(EmulatorError):
    """A model file changed between the runs' start and the writing of their results."""

    def __init__(self, files: Sequence[str], paths: Sequence[Path | str] | None = None) -> None:
        self.files = list(files)
        names = ", ".join(str(p) for p in paths) if paths else ", ".join(str(MODELS_DIR / f) + ".toml"
                                                                         for f in self.files)
        super().__init__(f"{names} changed while the runs went: nothing written (the runs may have read either "
                         "version); run again (runs that finished are kept in the cache, if one is used, under "
                         "their own model data)")


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    atomic_write_many({path: data})


def atomic_write_many(files: Mapping[Path | str, bytes]) -> None:
    """Writes each file whole or not at all, and the set together as far as a file system
    allows: every file is written to a temporary beside it and synced before any is
    renamed into place, so a full disk or an interruption while writing leaves the old set
    (not a new file beside an old one); only a stop between two renames, microseconds
    apart, could mix them. An error names the file it happened on. A symbolic link is
    written through (its target is replaced, the link kept); a path that exists and is
    neither a regular file nor a link to one (a device, a FIFO, a folder) is refused."""
    tmps: list[tuple[str, Path]] = []
    try:
        for path, data in files.items():
            p = Path(path)
            if p.is_symlink():
                try:
                    p = p.resolve()
                except RuntimeError:  # a loop of links (Python < 3.13; later, OSError ELOOP)
                    raise OSError(errno.ELOOP, "a loop of symbolic links", str(path)) from None
            if p.exists() and not p.is_file():
                raise OSError(errno.EEXIST, "exists and is not a regular file", str(path))
            try:
                p.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
                tmps.append((tmp, p))
                # mkstemp makes the file 0600; a result file gets the mode a new file's open()
                # gives (0666 less the umask), so results and cache entries read as usual
                os.fchmod(fd, _file_mode())
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as e:
                if e.filename is None:
                    raise OSError(e.errno, e.strerror, str(p)) from e
                raise
        for tmp, p in tmps:
            os.replace(tmp, p)
        tmps = []
    finally:
        for tmp, _ in tmps:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _file_mode() -> int:
    umask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def write_csv(path: Path | str, header: Sequence[str], rows: Iterable[Sequence[Any]], prov: Mapping[str, Any]) -> None:
    """A CSV with ``# key: value`` provenance lines, then the header and rows."""
    atomic_write_text(path, csv_text(header, rows, prov))


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]], prov: Mapping[str, Any]) -> str:
    """What :func:`write_csv` writes."""
    buf = io.StringIO()
    for k, v in prov.items():
        buf.write(f"# {k}: {json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v}\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for r in rows:
        w.writerow([_fmt(x) for x in r])
    return buf.getvalue()


def read_csv(path: Path | str) -> tuple[list[str], list[dict[str, str]], dict[str, str]]:
    """Reads a vemu CSV: (header, rows as dicts, provenance)."""
    prov: dict[str, str] = {}
    lines = []
    with open(path, encoding="utf-8-sig") as f:  # a byte-order mark (a spreadsheet's save) is not data
        for line in f:
            if line.startswith("#"):
                k, _, v = line[1:].strip().partition(": ")
                prov[k] = v
            else:
                lines.append(line)
    r = csv.DictReader(lines)
    rows = list(r)
    return list(r.fieldnames or []), rows, prov


def _fmt(x: Any) -> Any:
    if isinstance(x, float):
        return f"{x:.6g}"
    return x
