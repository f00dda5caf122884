"""Repository-wide pytest rules; the unit tests' fixtures live in tests/conftest.py."""

from __future__ import annotations

from myst_nb.ext.glue import GLUE_PREFIX

GLUED_IMAGES = tuple(GLUE_PREFIX + mime for mime in ("image/png", "image/jpeg"))


def pytest_collection_modifyitems(items):
    """nbval does not compare images (``image/png``); a figure glued for a ``{glue:figure}``
    (:func:`subspacelens.book.figure`) is stored under a prefixed mime type, which it would compare byte by
    byte. Skip those the same way; the glued figure's text (its size and number of axes) is still compared."""
    for notebook in {item.parent for item in items if hasattr(getattr(item, "parent", None), "skip_compare")}:
        notebook.skip_compare = tuple(notebook.skip_compare) + GLUED_IMAGES
