"""How much of PyTorch's public API minifm has, by name: torch's functions, Tensor's methods,
torch.nn.functional and torch.nn's modules, and the op table's size.

Counting names is not testing them: what a name does is checked by the tests (the op
table in tests/optable.py drives forward, gradient, finite-difference, second-order,
error, edge-case and cuda-device tests against PyTorch). This script says what is there
and, with --missing, what is not, so a user porting code can look a name up.

    python benchmarks/api_coverage.py [--missing] [--output benchmarks/results/api_coverage.json]
"""
from __future__ import annotations

import argparse
import inspect
import json
import os
import sys

import torch

import minifm
import minifm.nn as nn
import minifm.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def public_callables(module):
    """The public callable names of a module, less the typing helpers it re-exports."""
    return sorted(name for name in dir(module) if not name.startswith("_")
                  and callable(getattr(module, name))
                  and not inspect.ismodule(getattr(module, name))
                  and getattr(getattr(module, name), "__module__", "") != "typing")


def torch_modules():
    return sorted(name for name in dir(torch.nn) if not name.startswith("_")
                  and inspect.isclass(getattr(torch.nn, name))
                  and issubclass(getattr(torch.nn, name), torch.nn.Module))


def tensor_methods():
    return sorted(name for name in dir(torch.Tensor) if not name.startswith("_"))


def op_table_size():
    sys.path.insert(0, os.path.join(HERE, "..", "tests"))
    from optable import OPS  # the tests' op table (needs the source tree)
    return len(OPS)


def coverage():
    groups = {
        "torch.*": (public_callables(torch), minifm),
        "torch.Tensor methods": (tensor_methods(), minifm.Tensor),
        "torch.nn.functional": (public_callables(torch.nn.functional), F),
        "torch.nn modules": (torch_modules(), nn),
    }
    report = {}
    for group, (names, ours) in groups.items():
        have = [n for n in names if hasattr(ours, n)]
        report[group] = {"torch": len(names), "minifm": len(have),
                         "missing": [n for n in names if not hasattr(ours, n)]}
    report["op table entries"] = op_table_size()
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--missing", action="store_true", help="list the names minifm lacks")
    parser.add_argument("--output", default=None, help="write the report as JSON")
    args = parser.parse_args(argv)
    report = coverage()
    print(f"torch {torch.__version__}; op table: {report['op table entries']} entries")
    for group, row in report.items():
        if isinstance(row, dict):
            print(f"{group:22s} {row['minifm']:4d} of {row['torch']:4d}")
            if args.missing:
                print("    missing: " + ", ".join(row["missing"]))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(report, f, indent=1)
        print(f"saved {args.output}")


if __name__ == "__main__":
    main()
