"""The activation cache: contract layout, determinism, resume after failure or SIGKILL, shards, refusals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from subspacelens import cache as cache_mod
from subspacelens.cache import (
    CacheLockedError,
    CacheMismatchError,
    DamagedCacheError,
    IncompleteCacheError,
    batch_slices,
    cache_status,
    merge_shards,
    open_cache,
    shard_batches,
    store_lock,
    verify_cache,
)
from subspacelens.capture import ModelNotFoundError, run_capture

TIMING_ATTRS = {"capture_seconds"}

WORKER = textwrap.dedent(
    """\
    import json, sys, torch
    torch.set_num_threads(1)
    from subspacelens.capture import CaptureConfig, run_capture
    from subspacelens.organism import OrganismConfig, build_pipeline
    config = CaptureConfig(**json.loads(sys.argv[1]))
    run_capture(config, sys.argv[2], pipeline=build_pipeline(OrganismConfig.tiny()), progress=False)
    """
)


def _files(store: Path) -> dict[str, bytes]:
    """Every chunk and metadata file of a store, except the attrs (which hold timings)."""
    return {
        str(f.relative_to(store)): f.read_bytes()
        for f in sorted(store.rglob("*"))
        if f.is_file() and f.name != ".zattrs" and "progress" not in f.parts
    }


def assert_same_store(a: Path, b: Path) -> None:
    """Byte-identical arrays (chunks and array metadata), equal attrs but for the wall-clock timing."""
    fa, fb = _files(Path(a)), _files(Path(b))
    assert sorted(fa) == sorted(fb)
    for name in fa:
        assert fa[name] == fb[name], f"{name} differs"
    da_, db_ = open_cache(a), open_cache(b)
    drop = lambda attrs: {k: v for k, v in attrs.items() if k not in TIMING_ATTRS}  # noqa: E731
    assert drop(da_.attrs) == drop(db_.attrs)
    assert da_.drop_attrs().identical(db_.drop_attrs())
    assert sorted(p.name for p in (Path(a) / "progress").glob("batch-*")) == sorted(
        p.name for p in (Path(b) / "progress").glob("batch-*")
    )


def _worker(tmp_path: Path, config, out: Path, **overrides) -> list[str]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    params = {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config.with_(**overrides)).items()}
    return [sys.executable, str(script), json.dumps(params), str(out)]


@pytest.fixture(scope="module")
def reference(tiny_pipe, tiny_config, tmp_path_factory):
    """One uninterrupted single-process capture (3 batches of 4) every other test compares against."""
    out = tmp_path_factory.mktemp("ref") / "ref.zarr"
    return run_capture(tiny_config, out, pipeline=tiny_pipe, progress=False)


def test_layout_follows_the_design_contract(reference, tiny_pipe):
    ds = open_cache(reference)
    assert ds.activations.dims == ("sample", "layer", "step", "branch", "feature")
    assert ds.activations.shape == (12, 2, 2, 2, 32)
    assert ds.activations.dtype == np.float32
    assert isinstance(ds.activations.data, da.Array)  # lazy
    assert list(ds.branch.values) == ["uncond", "cond"]
    assert list(ds.layer.values) == [0, 1] and list(ds.step.values) == [0, 2]
    tiny_pipe.scheduler.set_timesteps(3)
    assert list(ds.timestep.values) == [int(tiny_pipe.scheduler.timesteps[s]) for s in (0, 2)]
    assert list(ds.subject.values[:4]) == ["lion"] * 3 + ["octopus"]
    assert list(ds.category.values[::3]) == ["animals", "animals", "food", "food"]
    assert list(ds.seed.values[:4]) == [0, 1, 2, 0]
    assert ds.prompt.values[4] == "an octopus"
    for key in ("model", "guidance_scale", "num_inference_steps", "scheduler", "dtype", "prompt_set", "reduction",
                "package_versions", "config_hash", "num_layers_total", "capture_seconds"):
        assert key in ds.attrs, key
    assert ds.attrs["model"] == "tiny-random-pixart" and ds.attrs["guidance_scale"] == 4.5
    assert ds.attrs["prompt_set"] == "tiny" and ds.attrs["num_layers_total"] == 2
    assert ds.attrs["capture_seconds"] > 0
    assert "torch" in json.loads(ds.attrs["package_versions"])
    assert ds.latents.shape == (12, 4, 8, 8)
    assert "tokens" not in ds
    assert not np.isnan(ds.activations.values).any()
    z = ds.activations.sel(step=2, branch="cond").transpose("layer", "feature", "sample")
    assert z.shape == (2, 32, 12)


def test_identical_captures_give_identical_stores(reference, tiny_pipe, tiny_config, tmp_path):
    again = run_capture(tiny_config, tmp_path / "again.zarr", pipeline=tiny_pipe, progress=False)
    assert_same_store(reference, again)


def test_resume_after_an_injected_failure_loses_and_duplicates_nothing(
    reference, tiny_pipe, tiny_config, tmp_path, monkeypatch
):
    out = tmp_path / "resumed.zarr"
    original = cache_mod.CacheWriter.write_batch
    written = []

    def fail_after_one(self, batch, *args, **kwargs):
        if written:
            raise RuntimeError("injected failure")
        written.append(batch)
        return original(self, batch, *args, **kwargs)

    monkeypatch.setattr(cache_mod.CacheWriter, "write_batch", fail_after_one)
    with pytest.raises(RuntimeError, match="injected"):
        run_capture(tiny_config, out, pipeline=tiny_pipe, progress=False)
    monkeypatch.setattr(cache_mod.CacheWriter, "write_batch", original)
    assert cache_status(out) | {"config_hash": None} == {
        "exists": True, "complete": False, "config_hash": None, "done": 1, "total": 3, "shard_index": 0, "num_shards": 1
    }
    with pytest.raises(IncompleteCacheError, match="1 of 3 batches"):
        open_cache(out)
    partial = open_cache(out, allow_incomplete=True)
    assert list(partial.sample.values) == [0, 1, 2, 3]

    calls = []
    original_call = type(tiny_pipe).__call__
    monkeypatch.setattr(type(tiny_pipe), "__call__", lambda self, *a, **k: calls.append(1) or original_call(self, *a, **k))
    run_capture(tiny_config, out, pipeline=tiny_pipe, progress=False)
    assert len(calls) == 2  # only the two missing batches were computed
    assert_same_store(reference, out)


def test_resume_after_sigkill_loses_and_duplicates_nothing(tiny_pipe, tiny_config, tmp_path):
    config = tiny_config.with_(batch_size=1)  # 12 batches, so the kill lands mid-capture
    out = tmp_path / "killed.zarr"
    proc = subprocess.Popen(_worker(tmp_path, config, out))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and len(list((out / "progress").glob("batch-*.json"))) >= 3:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the worker finished before it could be killed"
    status = cache_status(out)
    assert 3 <= status["done"] < 12 and not status["complete"]
    resumed = run_capture(config, out, pipeline=tiny_pipe, progress=False)
    uninterrupted = run_capture(config, tmp_path / "whole.zarr", pipeline=tiny_pipe, progress=False)
    assert_same_store(uninterrupted, resumed)


def test_two_shard_processes_merge_to_the_single_run_store(reference, tiny_config, tmp_path):
    shards = [tmp_path / f"shard{i}.zarr" for i in range(2)]
    procs = [subprocess.Popen(_worker(tmp_path, tiny_config, s, shard_index=i, num_shards=2)) for i, s in enumerate(shards)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    assert [cache_status(s)["total"] for s in shards] == [2, 1]  # 3 batches: whole batches per shard
    with pytest.raises(IncompleteCacheError, match="shard 0 of 2"):
        open_cache(shards[0])
    assert open_cache(shards[1], allow_incomplete=True).sizes["sample"] == 4
    with pytest.raises(ValueError, match=r"shard\(s\) \[1\] of 2 missing"):
        merge_shards(shards[:1], tmp_path / "bad.zarr")
    merged = merge_shards(shards, tmp_path / "merged.zarr")
    assert_same_store(reference, merged)
    assert open_cache(merged).attrs["capture_seconds"] > 0


def test_a_store_of_another_configuration_is_refused_not_overwritten(reference, tiny_pipe, tiny_config):
    before = _files(reference)
    with pytest.raises(CacheMismatchError, match=r"differs in \['guidance_scale'\]"):
        run_capture(tiny_config.with_(guidance_scale=7.5), reference, pipeline=tiny_pipe, progress=False)
    with pytest.raises(CacheMismatchError, match="shard"):
        run_capture(tiny_config.with_(num_shards=3, shard_index=1), reference, pipeline=tiny_pipe, progress=False)
    assert _files(reference) == before


def test_a_complete_store_is_reopened_without_generating(reference, tiny_pipe, tiny_config, monkeypatch):
    def no_generation(*args, **kwargs):
        raise AssertionError("the pipeline ran")

    monkeypatch.setattr(type(tiny_pipe), "__call__", no_generation)
    assert run_capture(tiny_config, reference, pipeline=tiny_pipe, progress=False) == reference


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"steps": [0, 3]}, "steps"),
        ({"layers": [2]}, "layers"),
        ({"dtype": "float8"}, "dtype"),
        ({"batch_size": 0}, "batch_size"),
        ({"seeds": 4}, "seeds"),
        ({"seeds": [0, 7]}, "seeds"),
        ({"shard_index": 2, "num_shards": 2}, "shard_index"),
        ({"num_shards": 4}, "num_shards"),
        ({"token_layers": [1]}, "token_layers"),
        ({"token_layers": [1], "token_steps": [1]}, "token_steps"),
        ({"prompt_set": "v9"}, "prompt set"),
        ({"num_inference_steps": 0}, "num_inference_steps"),
    ],
)
def test_bad_parameters_fail_clearly_and_write_nothing(tiny_pipe, tiny_config, tmp_path, overrides, match):
    out = tmp_path / "bad.zarr"
    with pytest.raises(ValueError, match=match):
        run_capture(tiny_config.with_(**overrides), out, pipeline=tiny_pipe, progress=False)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_a_missing_model_fails_clearly_and_writes_nothing(tiny_config, tmp_path):
    out = tmp_path / "cache" / "x.zarr"
    with pytest.raises(ModelNotFoundError, match="data/models/no-such-organism"):
        run_capture(tiny_config.with_(model=str(tmp_path / "data/models/no-such-organism")), out)
    assert not out.exists()


def test_guidance_off_tokens_and_half_precision(tiny_pipe, tiny_config, tmp_path, capsys):
    config = tiny_config.with_(guidance_scale=1.0, dtype="float16", token_layers=[1], token_steps=[2],
                               keep_latents=False, layers=[1])
    ds = open_cache(run_capture(config, tmp_path / "t.zarr", pipeline=tiny_pipe))
    assert "capture t.zarr" in capsys.readouterr().err  # the tqdm bar over images
    assert list(ds.branch.values) == ["cond"] and list(ds.layer.values) == [1]
    assert ds.activations.dtype == np.float16 and "latents" not in ds
    assert ds.tokens.dims == ("sample", "token_layer", "token_step", "branch", "token", "feature")
    assert ds.tokens.shape == (12, 1, 1, 1, 16, 32)
    assert list(ds.token_timestep.values) == [ds.timestep.sel(step=2).item()]
    mean = ds.tokens.astype("float32").mean("token").isel(token_layer=0, token_step=0)
    np.testing.assert_allclose(mean, ds.activations.sel(layer=1, step=2), rtol=5e-3, atol=0.05)


@given(num_batches=st.integers(1, 60), num_shards=st.integers(1, 60))
def test_shards_partition_the_batches_into_contiguous_runs(num_batches, num_shards):
    if num_shards > num_batches:
        with pytest.raises(ValueError, match="num_shards"):
            shard_batches(num_batches, 0, num_shards)
        return
    parts = [shard_batches(num_batches, i, num_shards) for i in range(num_shards)]
    assert [b for part in parts for b in part] == list(range(num_batches))
    assert all(part for part in parts)


@given(n=st.integers(1, 500), size=st.integers(1, 64))
def test_batches_cover_the_samples_once(n, size):
    slices = batch_slices(n, size)
    assert [i for s in slices for i in range(s.start, s.stop)] == list(range(n))
    assert all(s.stop - s.start == size for s in slices[:-1])


def test_cached_latents_decode_to_images(reference, tiny_pipe):
    from subspacelens.capture import decode_latents

    images = decode_latents(tiny_pipe, open_cache(reference).latents.isel(sample=slice(0, 3)))
    assert images.shape == (3, 3, 16, 16) and images.dtype == np.float32
    assert images.min() >= -1 and images.max() <= 1


# --- integrity: damaged chunks, markers, locks, leftovers ---------------------------------------

def _damage(store: Path, how: str) -> None:
    """Damage batch 1 (samples 4..7) of a 3-batch store the way a bad copy or disk would."""
    chunk = store / "activations" / "1.0.1.1.0"
    data = chunk.read_bytes()
    if how == "truncate":
        chunk.write_bytes(data[: len(data) // 2])
    elif how == "delete":
        chunk.unlink()
    elif how == "flip":
        chunk.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    elif how == "marker":
        (store / "progress" / "batch-000001.json").write_text('{"batch": 1, "sta')


def _count_generations(monkeypatch, pipe) -> list:
    calls = []
    original_call = type(pipe).__call__
    monkeypatch.setattr(type(pipe), "__call__", lambda self, *a, **k: calls.append(1) or original_call(self, *a, **k))
    return calls


@pytest.mark.parametrize("how", ["truncate", "delete", "marker"])
def test_a_damaged_batch_is_refused_on_open_and_exactly_it_is_recomputed(
    reference, tiny_pipe, tiny_config, tmp_path, monkeypatch, how
):
    store = Path(shutil.copytree(reference, tmp_path / "copy.zarr"))
    _damage(store, how)
    with pytest.raises(DamagedCacheError, match=r"batch 1 \(samples 4\.\.7\)"):
        open_cache(store)
    assert list(open_cache(store, allow_incomplete=True).sample.values) == [0, 1, 2, 3, 8, 9, 10, 11]
    report = verify_cache(store)
    assert [d.batch for d in report.damaged] == [1] and report.intact == (0, 2)
    calls = _count_generations(monkeypatch, tiny_pipe)
    run_capture(tiny_config, store, pipeline=tiny_pipe, progress=False)
    assert len(calls) == 1  # only the damaged batch
    assert_same_store(reference, store)


def test_a_corrupt_marker_is_named(reference, tmp_path):
    store = Path(shutil.copytree(reference, tmp_path / "copy.zarr"))
    _damage(store, "marker")
    with pytest.raises(DamagedCacheError, match=r"progress/batch-000001\.json: corrupt progress marker"):
        cache_status(store)


def test_altered_bytes_are_found_by_hashes_on_request(reference, tiny_pipe, tiny_config, tmp_path, monkeypatch):
    store = Path(shutil.copytree(reference, tmp_path / "copy.zarr"))
    _damage(store, "flip")
    assert verify_cache(store).ok  # sizes are unchanged
    with pytest.raises(DamagedCacheError, match=r"activations/1\.0\.1\.1\.0 has changed"):
        open_cache(store, verify_hashes=True)
    calls = _count_generations(monkeypatch, tiny_pipe)
    run_capture(tiny_config, store, pipeline=tiny_pipe, progress=False, verify_hashes=True)
    assert len(calls) == 1
    assert_same_store(reference, store)


def test_verify_command_reports_damage_by_batch_and_sample_range(reference, tmp_path):
    store = Path(shutil.copytree(reference, tmp_path / "copy.zarr"))
    verify = [sys.executable, "-m", "subspacelens", "verify", str(store)]
    env = {**os.environ, "PYTHONPATH": str(Path(cache_mod.__file__).parents[1])}
    intact = subprocess.run(verify, capture_output=True, text=True, env=env)
    assert intact.returncode == 0 and "3 batches intact, 0 damaged (sizes and SHA-256 checked)" in intact.stdout
    _damage(store, "flip")
    damaged = subprocess.run(verify, capture_output=True, text=True, env=env)
    assert damaged.returncode == 1
    assert "batch 1 (samples 4..7): activations/1.0.1.1.0 has changed" in damaged.stdout
    missing = subprocess.run([*verify[:-1], str(tmp_path / "nowhere.zarr")], capture_output=True, text=True, env=env)
    assert missing.returncode == 2 and "no store at" in missing.stderr


def test_a_second_capture_to_the_same_store_is_refused_clearly(tiny_pipe, tiny_config, tmp_path):
    out = tmp_path / "locked.zarr"
    with store_lock(out):
        with pytest.raises(CacheLockedError, match=r"locked\.zarr is being written by pid \d+"):
            run_capture(tiny_config, out, pipeline=tiny_pipe, progress=False)
    assert not out.exists()


def test_two_captures_started_together_do_not_collide(reference, tiny_config, tmp_path):
    out = tmp_path / "together.zarr"
    procs = [subprocess.Popen(_worker(tmp_path, tiny_config, out), stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    assert any(rc == 0 for rc, _ in results)
    for rc, err in results:
        assert rc == 0 or "CacheLockedError" in err and "is being written by" in err, err
    assert_same_store(reference, out)


def test_a_leftover_partial_store_is_removed(reference, tiny_pipe, tiny_config, tmp_path):
    out = tmp_path / "fresh.zarr"
    leftover = tmp_path / ".fresh.zarr.partial-0badc0de"
    (leftover / "activations").mkdir(parents=True)
    run_capture(tiny_config, out, pipeline=tiny_pipe, progress=False)
    assert not leftover.exists()
    assert_same_store(reference, out)


def test_merge_names_a_missing_shard_and_a_missing_path(tiny_pipe, tiny_config, tmp_path):
    shards = {i: run_capture(tiny_config.with_(shard_index=i, num_shards=3), tmp_path / f"s{i}.zarr",
                             pipeline=tiny_pipe, progress=False) for i in (0, 2)}
    with pytest.raises(ValueError, match=r"shard\(s\) \[1\] of 3 missing; given shards \[0, 2\]"):
        merge_shards([shards[0], shards[2]], tmp_path / "merged.zarr")
    with pytest.raises(FileNotFoundError, match=r"shards: no store at .*s1\.zarr"):
        merge_shards([shards[0], tmp_path / "s1.zarr", shards[2]], tmp_path / "merged.zarr")
    assert not (tmp_path / "merged.zarr").exists()
