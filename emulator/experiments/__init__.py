"""Named studies. ``vemu reproduce`` runs each one's ``reproduce(out, quick=, workers=,
progress=, cache=)`` in turn; each writes its CSVs (with provenance) and figures into
``out``."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

STUDIES = ("headline", "validation", "sensitivity", "figures")


def reproduce_all(out: Path, *, quick: bool = False, workers: int | None = None, progress: bool = False,
                  cache: Any = None, only: tuple[str, ...] = ()) -> dict[str, Any]:
    summaries = {}
    for name in STUDIES:
        if only and name not in only:
            continue
        mod = importlib.import_module(f"{__name__}.{name}")
        summaries[name] = mod.reproduce(out, quick=quick, workers=workers, progress=progress, cache=cache)
    return summaries
