"""Benchmark of the unified supernet, printed as one JSON line.

Sections (each a function returning a dict, merged into the line):
  params  parameter counts of the unified supernet against GreedyNAS-style (13 candidates per layer)
          and FairNAS/ProxylessNAS-style (6 candidates) single-path supernets on the same macro.

Usage: python scripts/bench_supernet.py [--space imagenet]
"""

from __future__ import annotations

import argparse
import json
import sys


def params_section(space_name: str) -> dict:
    from sgnas.space import get_space
    from sgnas.supernet import param_ratios

    return {"params": param_ratios(get_space(space_name))}


SECTIONS = {"params": params_section}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="imagenet", help="search space (default imagenet)")
    parser.add_argument("--sections", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run (default: {','.join(SECTIONS)})")
    args = parser.parse_args(argv)
    record: dict = {"bench": "supernet", "space": args.space}
    for name in args.sections.split(","):
        if name not in SECTIONS:
            parser.error(f"unknown section {name!r}; known: {', '.join(SECTIONS)}")
        record.update(SECTIONS[name](args.space))
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
