"""Provenance and safe writing of result files.

Every result file is written whole or not at all: to a temporary name in the same folder,
flushed, then renamed over the target (rename is atomic on POSIX). Every CSV starts with
``#`` lines saying what made it: vemu's version, the git revision, the seed, the options
and a hash of every model file read.
"""

from __future__ import annotations

import csv
import errno
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
from .model import MODELS_DIR


def git_revision() -> str:
    root = Path(__file__).resolve().parent.parent
    try:
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


def provenance(options: Mapping[str, Any], models: Iterable[tuple[str, str]] = ()) -> dict[str, Any]:
    return {
        "vemu_version": __version__,
        "git_revision": git_revision(),
        "python": platform.python_version(),
        "machine": f"{platform.machine()} {platform.system()} {os.cpu_count()} cpus",
        "options": dict(options),
        "models": model_hashes(models),
    }


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
