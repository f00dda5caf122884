"""Every check of one page runs on the worker that loaded it (``make browser-test`` uses ``--dist loadgroup``)."""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        page = getattr(item, "callspec", None) and item.callspec.params.get("page_path")
        if page:
            item.add_marker(pytest.mark.xdist_group(page))
