"""Rewrite the README's results section from a saved results.json (no guard is run).

    python bench/update_readme.py reports/full            # folder holding results.json
    python bench/update_readme.py reports/full/results.json README.md

The section is the text between ``<!-- results:start -->`` and ``<!-- results:end -->``; a README
without both markers is left untouched and the script exits with code 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from railguard.errors import RailguardError
from railguard.eval.readme import update_readme_from

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="results.json, or the report folder that holds it")
    parser.add_argument("readme", type=Path, nargs="?", default=ROOT / "README.md", help="[default: README.md]")
    args = parser.parse_args(argv)
    try:
        path = update_readme_from(args.results, args.readme)
    except RailguardError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"results section of {path} rewritten from {args.results}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
