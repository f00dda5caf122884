"""The ``subspacelens`` command (also ``python -m subspacelens``).

* ``subspacelens verify <store> [--sizes-only]``: check every finished batch of an activation cache
  against the byte counts and SHA-256 recorded when it was written; exit 0 when intact, 1 when a batch is
  damaged (each listed with its batch index and sample range), 2 when the path is not a cache.
* ``subspacelens check-params <notebook.md> <params.yaml>``: refuse parameter-file keys the chapter's
  ``parameters`` cell does not define (the Makefile runs it before executing a chapter); exit 2 if any.
* ``subspacelens longest-first <notebook.ipynb> ...``: the executed notebooks, the longest (as recorded by
  the run that executed them) first: the order ``make nbval`` hands them to its workers, so no long
  chapter starts last.
* ``subspacelens rerun-box <notebook.ipynb> <chapter> <params.yaml>``: add the "How to rerun this chapter"
  box to an executed chapter and collapse its code (:mod:`subspacelens.rerun`; the Makefile runs it after
  papermill).
* ``subspacelens train-organism --seed K [--size deep] [--recipe nested] [--out data/models] [--name N]``: train one
  organism with its twin and held-out evaluation (:func:`subspacelens.organism.train.train_organism`), one thread;
  writes ``<out>/<N>/`` and ``<out>/<N>-random-init/`` (``N`` defaults to ``organism-s<K>``).
"""

from __future__ import annotations

import argparse
import sys


def _verify(args: argparse.Namespace) -> int:
    from subspacelens.cache import verify_cache

    try:
        report = verify_cache(args.store, hashes=not args.sizes_only)
    except (FileNotFoundError, ValueError) as err:
        print(f"subspacelens verify: {err}", file=sys.stderr)
        return 2
    print(report)
    return 0 if report.ok else 1


def _check_params(args: argparse.Namespace) -> int:
    from subspacelens.params import check_parameters

    try:
        check_parameters(args.notebook, args.params)
    except (FileNotFoundError, ValueError) as err:
        print(f"subspacelens check-params: {err}", file=sys.stderr)
        return 2
    return 0


def _longest_first(args: argparse.Namespace) -> int:
    from subspacelens.book import recorded_seconds

    try:
        seconds = {path: recorded_seconds(path) for path in args.notebooks}
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"subspacelens longest-first: {err}", file=sys.stderr)
        return 2
    print(" ".join(sorted(args.notebooks, key=lambda path: -seconds[path])))
    return 0


def _rerun_box(args: argparse.Namespace) -> int:
    from subspacelens.rerun import add_rerun_box

    try:
        add_rerun_box(args.notebook, args.chapter, args.params)
    except (FileNotFoundError, ValueError) as err:
        print(f"subspacelens rerun-box: {err}", file=sys.stderr)
        return 2
    return 0


def _train_organism(args: argparse.Namespace) -> int:
    from subspacelens.organism.build import OrganismConfig
    from subspacelens.organism.evaluate import Evaluation
    from subspacelens.organism.train import TrainConfig, train_organism

    config = {"default": OrganismConfig.default, "deep": OrganismConfig.deep, "tiny": OrganismConfig.tiny}[args.size]()
    recipe = {"default": TrainConfig, "nested": TrainConfig.nested}[args.recipe]()
    if args.steps is not None:
        recipe = TrainConfig.from_dict({**recipe.to_dict(), "steps": args.steps})
    record = train_organism(args.out, config, recipe, seed=args.seed, name=args.name or f"organism-s{args.seed}",
                            evaluation=Evaluation(), log=lambda line: print(line, flush=True))
    print(f"wrote {args.out}/{record['name']} and its twin in {record['wall_seconds']['total']:.0f} s")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="subspacelens", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="check an activation cache's chunks against their recorded checksums")
    verify.add_argument("store", help="path of the <name>.zarr store")
    verify.add_argument("--sizes-only", action="store_true", help="check byte counts only (fast), not SHA-256")
    verify.set_defaults(run=_verify)
    check = commands.add_parser("check-params", help="refuse parameter-file keys a chapter does not define")
    check.add_argument("notebook", help="the chapter's jupytext MyST file, notebooks/<name>.md")
    check.add_argument("params", help="the YAML parameter file")
    check.set_defaults(run=_check_params)
    order = commands.add_parser("longest-first", help="executed notebooks, the longest recorded run first")
    order.add_argument("notebooks", nargs="+", help="executed .ipynb files")
    order.set_defaults(run=_longest_first)
    rerun = commands.add_parser("rerun-box", help="add the 'How to rerun this chapter' box to an executed chapter")
    rerun.add_argument("notebook", help="the executed .ipynb (rewritten in place)")
    rerun.add_argument("chapter", help="the chapter's name, as in notebooks/<chapter>.md")
    rerun.add_argument("params", help="the parameter file it ran with")
    rerun.set_defaults(run=_rerun_box)
    train = commands.add_parser("train-organism", help="train one organism, its twin and its held-out evaluation")
    train.add_argument("--seed", type=int, required=True, help="training seed (initialisation, data order, noise)")
    train.add_argument("--size", choices=("default", "deep", "tiny"), default="deep", help="OrganismConfig preset")
    train.add_argument("--recipe", choices=("default", "nested"), default="nested", help="TrainConfig preset")
    train.add_argument("--steps", type=int, default=None, help="transformer steps (default: the recipe's)")
    train.add_argument("--out", default="data/models", help="folder the organism folders are written to")
    train.add_argument("--name", default=None, help="organism folder name (default organism-s<seed>)")
    train.set_defaults(run=_train_organism)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
