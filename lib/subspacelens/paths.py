"""Where relative paths point.

A chapter is executed from different working directories: papermill runs it from the
repository root, nbval from ``book/``, a reader's Jupyter from ``notebooks/``. Parameters
therefore name files relative to the repository root (``data/cache/organism-v2-cfg4.5.zarr``),
and every library entry point that reads or writes a file resolves them with :func:`resolve`.
"""

from __future__ import annotations

import os
from pathlib import Path

# lib/subspacelens/paths.py -> the repository, when the package is used from its checkout.
_CHECKOUT = Path(__file__).resolve().parents[2]


def project_root() -> Path:
    """The repository holding this package (an editable install from the checkout: it has the
    book's ``_toc.yml``); otherwise, for a package installed elsewhere, the working directory."""
    return _CHECKOUT if (_CHECKOUT / "_toc.yml").is_file() else Path.cwd()


def resolve(path: str | os.PathLike) -> Path:
    """An absolute path: absolute paths and ``~`` stay as they are, relative ones are taken
    from :func:`project_root`."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else project_root() / path
