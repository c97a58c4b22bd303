"""Build the shipped NB201 latency basis (``lut/nb201-latency-basis.npz``) from latency.csv.

The basis (a few principal components, float16, see :mod:`sgnas.lut_predict`) is built from the
training devices of the shipped shared generator only (``generators/nb201-shared-*.pt``), so a
device it never saw stays new to both. Usage::

    python scripts/build_latency_basis.py [--bench ../shared/data/nasbench201] [--rank 8]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    from sgnas.errors import SgnasError
    from sgnas.lut_predict import build_basis, default_basis_path
    from sgnas.nb201.bench import LATENCY, bench_file, read_cell_table
    from sgnas.shared_generator import load_shared

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bench", default=None)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--shared", default=str(Path(__file__).resolve().parents[1] / "generators"
                                           / "nb201-shared-latency.pt"))
    p.add_argument("--out", default=str(default_basis_path()))
    args = p.parse_args(argv)
    try:
        devices = [d["name"] for d in load_shared(args.shared).devices]
        t = read_cell_table(bench_file(LATENCY, args.bench), [d + "_ms" for d in devices])
        tables = {}
        for d in devices:
            col = np.empty(len(t))
            col[t.codes()] = t.columns[d + "_ms"]
            tables[d] = col
        basis = build_basis(tables, args.rank, source="latency.csv (NAS-Bench-201), training "
                            "devices of " + Path(args.shared).name)
        basis.save(args.out)
    except SgnasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"out": args.out, "rank": basis.rank, "devices": devices,
                      "bytes": Path(args.out).stat().st_size}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
