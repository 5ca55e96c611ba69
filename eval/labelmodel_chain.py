"""The README chain's votes (taxonomy key-phrase LFs + one embedding LF) -> label models, NMI vs gold intents.

Correlated, mostly unipolar key-phrase LFs next to one broad embedding LF is the case the no-gold default
must not lose on (issue 15). Run the README's first two steps, then this:

    llmlabel taxonomy examples/banking77_sample.jsonl -o work/taxonomy.yaml --max-labels 30
    llmlabel label examples/banking77_sample.jsonl -t work/taxonomy.yaml --lfs pipelines/banking77_lfs.yaml -o work/votes
    python eval/labelmodel_chain.py work/votes examples/banking77_sample.jsonl --assignments work/assignments.jsonl \
        --out eval/results/labelmodel-chain

Writes (or prints, without --out) one JSON object + a Markdown table: NMI against the gold `category` for each label model's `predict()` (rows no LF
covers take the prior's argmax, as labeled.parquet does), for each LF alone (its abstains as one more
cluster), and for the taxonomy's own assignments when given.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine  # noqa: E402  (one machine description for every results file)

sys.path.insert(0, str(ROOT))

from llmlabel.labelmodel import WeightedVote, make_model  # noqa: E402
from llmlabel.labelmodel.pipeline import load_votes  # noqa: E402


def main() -> None:
    from sklearn.metrics import normalized_mutual_info_score as nmi

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("votes")
    ap.add_argument("corpus")
    ap.add_argument("--assignments", default=None)
    ap.add_argument("--models", default="mv,mvb-r,onecoin,ds,wv-r,onecoin-r,ds-r,heldout")
    ap.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    args = ap.parse_args()
    L = load_votes(args.votes)[0]
    gold = {}
    for line in open(args.corpus, encoding="utf-8"):
        r = json.loads(line)
        gold[str(r["id"])] = r["category"]
    ids = [str(i) for i in L.ids]
    y = np.array([gold[i] for i in ids])
    out = {"items": len(ids), "lfs": len(L.lf_names), "classes": L.cardinality,
           "covered": float(L.covered().mean()), "models": {}, "single_lfs": {}}
    for spec in args.models.split(","):
        model = make_model(spec, L.cardinality).fit(L)
        row = {"nmi": float(nmi(y, model.predict(L)))}
        if hasattr(model, "chosen_"):
            row["chosen"] = model.chosen_
            row["reason"] = model.selection_["reason"]
        out["models"][spec] = row
    votes = np.asarray(L.votes)
    for j, name in enumerate(L.lf_names):
        cov = float((votes[:, j] >= 0).mean())
        if cov >= 0.5:  # the broad LFs (the embedding LF); key-phrase LFs each cover a few percent
            # The same LF as a label model's output: its vote wherever it votes, the others' majority only
            # where it abstains (uncovered rows then take the prior, as every label model row here does).
            w = np.ones(votes.shape[1])
            w[j] = 1e3
            lead = WeightedVote(L.cardinality, weights=w).fit(L)
            out["single_lfs"][name] = {"coverage": cov, "nmi_abstain_as_cluster": float(nmi(y, votes[:, j])),
                                       "nmi_others_fill_abstains": float(nmi(y, lead.predict(L)))}
    if args.assignments:
        a = {}
        for line in open(args.assignments, encoding="utf-8"):
            r = json.loads(line)
            a[str(r.get("id"))] = str(r.get("label", r.get("label_id")))
        out["taxonomy_assignments_nmi"] = float(nmi(y, [a.get(i, "?") for i in ids]))
    out["command"] = "python " + " ".join([os.path.relpath(__file__, ROOT)] + sys.argv[1:])
    out["date"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    out["machine"] = machine()
    if not args.out:
        print(json.dumps(out, indent=1))
        return
    Path(args.out).with_suffix(".json").write_text(json.dumps(out, indent=1))
    md = ["# Label models on the README chain's votes (NMI against the gold intents)", "",
          f"Made by `{out['command']}` on {out['date']}; machine: {out['machine']}; after the README's `llmlabel taxonomy ... "
          "--max-labels 30` and `llmlabel label ... --lfs pipelines/banking77_lfs.yaml` on "
          "examples/banking77_sample.jsonl.", "",
          f"{out['items']:,} items, {out['lfs']} LFs (one key-phrase LF per taxonomy label + one embedding LF), "
          f"{out['classes']} classes, {out['covered']:.1%} covered. Label models: `predict()` (uncovered rows "
          "take the prior's argmax). LFs alone: abstains form one more cluster.", "",
          "| labels from | NMI |", "|---|---|"]
    if "taxonomy_assignments_nmi" in out:
        md.append(f"| the taxonomy's own assignments | {out['taxonomy_assignments_nmi']:.3f} |")
    for name, r in out["single_lfs"].items():
        md.append(f"| LF {name} alone (coverage {r['coverage']:.0%}), abstains as one more cluster | "
                  f"{r['nmi_abstain_as_cluster']:.3f} |")
        md.append(f"| LF {name}, the other LFs' majority only where it abstains | {r['nmi_others_fill_abstains']:.3f} |")
    for name, r in out["models"].items():
        extra = f" (chose {r['chosen']})" if r.get("chosen") else ""
        md.append(f"| label model {name}{extra} | {r['nmi']:.3f} |")
    Path(args.out).with_suffix(".md").write_text("\n".join(md) + "\n")
    print("wrote", Path(args.out).with_suffix(".md"))


if __name__ == "__main__":
    main()
