"""Where relative paths point.

A chapter is executed from different working directories: papermill runs it from the
repository root, nbval from ``book/``, a reader's Jupyter from ``notebooks/``. Parameters
therefore name files relative to the repository root (``data/cache/organism-v2-cfg4.5.zarr``),
and every library entry point that reads or writes a file resolves them with :func:`resolve`.
"""

from __future__ import annotations

import os
from pathlib import Path

_MARKERS = ("_toc.yml", "_config.yml")


def project_root(start: str | os.PathLike | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) holding the
    book's ``_toc.yml`` and ``_config.yml``; the working directory when there is none
    (the library used outside this repository)."""
    here = Path(start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if all((folder / marker).is_file() for marker in _MARKERS):
            return folder
    return here


def resolve(path: str | os.PathLike) -> Path:
    """An absolute path: absolute paths and ``~`` stay as they are, relative ones are taken
    from :func:`project_root`."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else project_root() / path
