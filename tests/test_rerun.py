"""The reader's recipe added to an executed chapter (`subspacelens.rerun`) and the nbval order."""

import nbformat
import pytest

from subspacelens.__main__ import main
from subspacelens.rerun import BOX_TAG, add_rerun_box


def executed(tmp_path, durations=(1.5, 2.0, 30.0)):
    """A small notebook as papermill leaves it: parameters, injected parameters, one code cell."""
    cells = [
        nbformat.v4.new_code_cell('cache = "data/cache/a.zarr"  # the main capture\nn_boot = 10  # resamples\n'
                                  'steps = [\n    0,\n    19,\n]  # kept steps\n'
                                  '# a meaning too long for its line is written\n# on the lines above it\neps = 0.5\n',
                                  metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell('# Parameters\nn_boot = 200\n', metadata={"tags": ["injected-parameters"]}),
        nbformat.v4.new_code_cell("print(n_boot)"),
    ]
    for cell, seconds in zip(cells, durations):
        cell.metadata["papermill"] = {"duration": seconds}
    path = tmp_path / "chapter.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def test_box_lists_the_command_values_meanings_caches_and_time(tmp_path):
    path = executed(tmp_path)
    add_rerun_box(path, "controls", "params/default/controls.yaml")
    add_rerun_box(path, "controls", "params/default/controls.yaml")  # again: the box is replaced, not added
    notebook = nbformat.read(path, as_version=4)
    boxes = [c for c in notebook.cells if BOX_TAG in c.metadata.get("tags", [])]
    assert len(boxes) == 1 and notebook.cells[-1] is boxes[0]
    text = boxes[0].source
    assert "make chapter NB=controls PARAMS=params/default/controls.yaml" in text
    assert "| `n_boot` | `200` | resamples |" in text  # the injected value, the default's comment
    assert "| `steps` | `[0, 19]` | kept steps |" in text  # a value over several lines keeps its comment
    assert "| `eps` | `0.5` | a meaning too long for its line is written on the lines above it |" in text
    assert "| `data/cache/a.zarr` | `not present` |" in text
    assert "**34 s**" in text
    tags = [c.metadata["tags"] for c in notebook.cells if c.cell_type == "code"]
    assert tags == [["parameters", "remove-cell"], ["injected-parameters", "remove-cell"], ["hide-input"]]


def test_a_notebook_without_parameters_cell_is_refused(tmp_path):
    path = tmp_path / "plain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), path)
    with pytest.raises(ValueError, match="no cell tagged 'parameters'"):
        add_rerun_box(path, "plain", "p.yaml")
    assert main(["rerun-box", str(path), "plain", "p.yaml"]) == 2


def test_longest_first_orders_by_recorded_time(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    short, long = executed(tmp_path / "a", (1, 1, 1)), executed(tmp_path / "b", (1, 1, 90))
    assert main(["longest-first", str(short), str(long)]) == 0
    assert capsys.readouterr().out.split() == [str(long), str(short)]


def test_cells_already_out_of_view_are_not_collapsed(tmp_path):
    path = executed(tmp_path)
    notebook = nbformat.read(path, as_version=4)
    notebook.cells[2].metadata["tags"] = ["remove-input", "hide-input"]
    nbformat.write(notebook, path)
    add_rerun_box(path, "controls", "params/default/controls.yaml")
    assert nbformat.read(path, as_version=4).cells[2].metadata["tags"] == ["remove-input"]


def test_a_figure_is_glued_under_its_name_and_closed(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from subspacelens import book

    glued = []
    monkeypatch.setattr("myst_nb.glue", lambda name, value, display: glued.append((name, value, display)))
    fig, _ = plt.subplots()
    book.figure(fig, "fig-example")
    assert glued == [("fig-example", fig, False)]
    assert fig.number not in plt.get_fignums()  # closed: the cell does not show it a second time
    for name in ("example", "fig-", 3):
        with pytest.raises(ValueError, match="name: a figure's name starts with 'fig-'"):
            book.figure(plt.figure(), name)
    with pytest.raises(ValueError, match="fig: expected a matplotlib Figure"):
        book.figure("not a figure", "fig-example")
