"""The capture chapter under papermill on a saved tiny pipeline of every family (``model:`` a folder).

Each run saves the pipeline with ``save_pretrained``, executes ``notebooks/capturing_activations.md``
exactly as ``make chapter`` does (jupytext -> papermill, parameters from a dict) and checks the cache it
wrote: one ``layer`` per block of the family, ``feature`` = its width, branches = its guidance mode.
"""

from __future__ import annotations

import jupytext
import papermill
import pytest
from tiny_families import FAMILIES

from subspacelens.cache import open_cache
from subspacelens.paths import resolve

CHAPTER = resolve("notebooks/capturing_activations.md")


@pytest.fixture(scope="module")
def notebook_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("chapter") / "capturing_activations.ipynb"
    jupytext.write(jupytext.read(CHAPTER), path)
    return path


@pytest.mark.chapter
@pytest.mark.parametrize("name", list(FAMILIES))
def test_capture_chapter_runs_on_a_saved_pipeline_of_every_family(name, notebook_path, tiny_prompt_path, tmp_path):
    family = FAMILIES[name]
    folder = tmp_path / name
    family.build().save_pretrained(folder)
    out = tmp_path / "cache.zarr"
    parameters = dict(
        model=str(folder), prompt_set=str(tiny_prompt_path), num_inference_steps=3, steps=[0, 2], batch_size=4,
        height=family.size, width=family.size, out=str(out), **family.extra,
    )
    papermill.execute_notebook(
        str(notebook_path), str(tmp_path / "executed.ipynb"), parameters=parameters, cwd=str(resolve(".")),
        kernel_name="python3", progress_bar=False,
    )
    ds = open_cache(out)
    assert ds.sizes["layer"] == family.num_blocks and ds.block_kind.values.tolist() == list(family.block_kinds)
    assert ds.sizes["feature"] == 32
    assert ds.branch.values.tolist() == ["uncond", "cond"]
    assert ds.attrs["guidance_mode"] == ("true-cfg" if name == "flux" else "cfg")
    assert ds.attrs["model"] == str(folder)
