"""The structural figures issue 28 asks for before and after a change, for a checkout of llmlabel.

Lines of the package, modules over 400 lines, functions over 80 lines, the lines of the multi-label-only
modules, and the ``multi_label`` occurrences outside them (all, and the lines that branch on it). Reads source
only; nothing is imported.

    python eval/code_stats.py                  # this checkout
    python eval/code_stats.py /path/to/other   # another checkout or worktree (e.g. an older commit's)
"""

from __future__ import annotations

import argparse
import ast
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Modules that exist only for multi-label taxonomies (the "multi-label core" of issue 28).
MULTI_ONLY = ("lf/multispec.py", "lf/multilabel.py", "lf/multiclassifier.py", "artifacts/multivotes.py",
              "labelmodel/multipipeline.py", "labelmodel/multilabel.py", "multilabel_metrics.py",
              "distill/multisafety.py")
BRANCH = re.compile(r"\b(if|elif|else)\b")


def stats(checkout: Path) -> dict:
    pkg = checkout / "llmlabel"
    out = {"lines": 0, "modules": 0, "modules_over_400": [], "functions_over_80": [], "multi_only_lines": 0,
           "multi_label_outside": 0, "multi_label_branch_lines_outside": 0}
    for path in sorted(pkg.rglob("*.py")):
        rel, src = path.relative_to(pkg).as_posix(), path.read_text(encoding="utf-8")
        n = src.count("\n")
        out["lines"] += n
        out["modules"] += 1
        if n > 400:
            out["modules_over_400"].append(f"{rel} ({n})")
        if rel in MULTI_ONLY:
            out["multi_only_lines"] += n
        else:
            out["multi_label_outside"] += src.count("multi_label")
            out["multi_label_branch_lines_outside"] += sum(1 for line in src.splitlines()
                                                           if "multi_label" in line and BRANCH.search(line))
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                size = node.end_lineno - node.lineno + 1
                if size > 80:
                    out["functions_over_80"].append(f"{rel}:{node.name} ({size})")
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkout", nargs="?", default=str(ROOT), help="a checkout of llmlabel (default: this one)")
    checkout = Path(ap.parse_args(argv).checkout)
    if not (checkout / "llmlabel").is_dir():
        ap.error(f"{checkout} is not a checkout of llmlabel (no llmlabel/ folder in it)")
    print(json.dumps(stats(checkout), indent=1))


if __name__ == "__main__":
    main()
