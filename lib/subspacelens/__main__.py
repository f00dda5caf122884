"""The ``subspacelens`` command (also ``python -m subspacelens``).

* ``subspacelens verify <store> [--sizes-only]``: check every finished batch of an activation cache
  against the byte counts and SHA-256 recorded when it was written; exit 0 when intact, 1 when a batch is
  damaged (each listed with its batch index and sample range), 2 when the path is not a cache.
* ``subspacelens check-params <notebook.md> <params.yaml>``: refuse parameter-file keys the chapter's
  ``parameters`` cell does not define (the Makefile runs it before executing a chapter); exit 2 if any.
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
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
