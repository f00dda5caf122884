"""Core profiles of caches of different depths on one relative-depth axis (`subspacelens.architectures`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_families import FAMILIES

from subspacelens.architectures import CORE_PROFILES, core_profiles, depth_summary
from subspacelens.capture import run_capture


@pytest.fixture(scope="module")
def caches(tiny_config, tmp_path_factory):
    """A 2-block PixArt-Σ cache (both branches) and a 3-block guidance-distilled Flux cache (cond only)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("arch")
    out = {
        name: run_capture(tiny_config.with_(model=name, height=16, width=16), root / f"{name}.zarr",
                          pipeline=FAMILIES[name].build(), progress=False)
        for name in ("pixart-sigma", "flux")
    }
    torch.set_num_threads(threads)
    return out


def test_every_chapter_profile_lies_on_relative_depth(caches):
    profs = core_profiles(caches["flux"], n_boot=6, seed=1)
    assert list(profs) == [p.chapter for p in CORE_PROFILES if p.chapter in profs]
    assert set(profs) == {p.chapter for p in CORE_PROFILES}
    for prof in profs.values():
        assert prof["value"].dims == ("layer",)
        np.testing.assert_allclose(prof["relative_depth"].values, [0.0, 0.5, 1.0])
        assert prof["block_kind"].values.tolist() == ["double", "single", "single"]
        assert prof.sizes["boot"] == 6 and "low" in prof
    first_step = core_profiles(caches["flux"], chapters=["effective_rank"], step_index=0)["effective_rank"]
    assert not np.allclose(first_step["value"], profs["effective_rank"]["value"])


def test_summary_has_a_row_per_chapter_and_model_with_intervals(caches):
    by_model = {name: core_profiles(path, n_boot=6) for name, path in caches.items()}
    table = depth_summary(by_model)
    assert len(table) == len(CORE_PROFILES) * 2
    row = table.loc[("rate_reduction_across_layers", "pixart-sigma")]
    prof = by_model["pixart-sigma"]["rate_reduction_across_layers"]
    assert row["first"] == pytest.approx(float(prof["value"][0]))
    assert row["last/first"] == pytest.approx(float(prof["value"][-1] / prof["value"][0]))
    assert row["argmax_depth"] in (0.0, 1.0) and row["blocks"] == 2
    assert row["last/first CI"].startswith("[")


def test_bad_choices_fail_naming_the_argument(caches):
    with pytest.raises(ValueError, match="chapters: .*must be a non-empty selection"):
        core_profiles(caches["flux"], chapters=["no_such_chapter"])
    with pytest.raises(ValueError, match=r"branch: 'uncond' not in this cache's branches \['cond'\]"):
        core_profiles(caches["flux"], branch="uncond")


@pytest.mark.chapter
def test_branch_chapter_on_a_distilled_cache_says_so_instead_of_failing(caches, tmp_path):
    import jupytext
    import papermill

    from subspacelens.paths import resolve

    notebook = tmp_path / "cond_vs_uncond.ipynb"
    jupytext.write(jupytext.read(resolve("notebooks/cond_vs_uncond.md")), notebook)
    executed = papermill.execute_notebook(
        str(notebook), str(tmp_path / "executed.ipynb"), cwd=str(resolve(".")), kernel_name="python3",
        parameters=dict(cache=str(caches["flux"]), twin_cache=None, n_boot=3, n_permutations=4), progress_bar=False)
    markdown = [output["data"]["text/markdown"] for cell in executed["cells"] if cell["cell_type"] == "code"
                for output in cell.get("outputs", []) if "text/markdown" in output.get("data", {})]
    assert any("Not meaningful for this cache" in text for text in markdown)
    assert sum("Not computed: `has_uncond` is false" in text for text in markdown) == 8
