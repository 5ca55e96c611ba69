"""The numbers behind each report section, computed from :class:`~llmlabel.report.inputs.RunInputs`.

Each function returns a plain dict (or None when its inputs are absent); ``charts.py`` draws them and the
template lays them out. All per-item work is vectorised.
"""

from __future__ import annotations

import numpy as np

from .inputs import RunInputs


_ORDER = {s: i for i, s in enumerate(("taxonomy", "label", "aggregate", "xmc", "distill", "push", "review", "report"))}


def header(run: RunInputs) -> dict:
    out: dict = {"sources": run.sources, "n_human": 0, "multi_label": False, "created": None, "command": None,
                 "label_model": {}, "candidates": []}
    lab = run.labeled
    if lab is not None:
        n = len(lab)
        out.update(n_items=n, n_uncovered=int(lab.uncovered.sum()), n_classes=len(lab.classes),
                   n_human=int((lab.source == "human").sum()), multi_label=lab.multi_label,
                   created=lab.meta.get("created_utc"), command=lab.meta.get("command"))
        rep = lab.meta.get("label_model") or {}
        out["label_model"] = {k: rep.get(k) for k in ("chosen", "calibration", "reason", "n_dev", "dev_ece_before",
                                                      "dev_ece_after_in_sample", "n_gold") if rep.get(k) is not None}
        out["candidates"] = rep.get("candidates") or []
    elif run.votes is not None:
        out.update(n_items=len(run.votes), n_uncovered=int((~run.votes.covered()).sum()))
    usage: dict = {}
    for meta in (run.votes_meta, run.labeled.meta if run.labeled is not None else {}):
        for stage, u in (meta.get("usage") or {}).items():
            usage.setdefault(stage, u)  # the votes folder's record of the label stage wins over later copies
    out["usage"] = usage
    enc = (run.labeled.meta.get("encoder") if run.labeled is not None else None) or run.votes_meta.get("encoder")
    out["encoder"] = enc or None  # the tuned encoder the labels' gold LFs read (llmlabel.tuned)
    out["stages"] = sorted(({"stage": s.stage, "seconds": s.seconds, "finished": s.finished}
                            for s in run.stages if s.stage), key=lambda s: (_ORDER.get(s["stage"], 99), s["finished"] or ""))
    return out


def taxonomy(run: RunInputs) -> dict | None:
    tax = run.taxonomy
    if tax is None:
        return None
    shares = {}
    if run.labeled is not None:
        counts = np.bincount(run.labeled.label_index[run.labeled.label_index >= 0], minlength=len(run.labeled.classes))
        shares = dict(zip(run.labeled.classes, (counts / max(1, len(run.labeled))).tolist()))
    by_id = {lab.id: lab.name for lab in tax.labels}
    rows = [{"name": lab.name, "id": lab.id, "description": lab.description, "parent": by_id.get(lab.parent or "", ""),
             "share": lab.share, "labeled_share": shares.get(lab.name), "proposed": lab.proposed,
             "examples": [e.text for e in lab.examples[:3]], "keyphrases": lab.keyphrases[:6]} for lab in tax.labels]
    return {"labels": rows, "hierarchical": any(r["parent"] for r in rows), "instruction": tax.instruction}


def _gold_rows(run: RunInputs, L=None):
    """(rows into L or labeled, gold class index) for gold items present there, human-clamped items left out."""
    if not run.gold:
        return None
    lab = run.labeled
    src = L if L is not None else lab
    if src is None:
        return None
    ids = src.ids
    classes = (list(L.labels) if L.labels else None) if L is not None else lab.classes
    if ids is None or not classes:
        return None
    ids = [str(i) for i in ids]
    cpos = {c: j for j, c in enumerate(classes)}
    pos = {i: r for r, i in enumerate(ids)}
    human = set() if lab is None else {i for i, s in zip(lab.ids, lab.source) if s == "human"}
    pairs = [(pos[i], cpos[g]) for i, g in run.gold.items() if i in pos and g in cpos and i not in human]
    if not pairs:
        return None
    r, y = np.asarray(pairs).T
    return r, y


def lf_stats(hard: np.ndarray, k: int, y: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-LF coverage, overlap, conflict (as Snorkel defines them), vote counts and, with gold ``y``, accuracy;
    plus per-item conflict, from an (n, m) vote matrix (-1 = abstain). Vectorised over items."""
    n, m = hard.shape
    voted = hard >= 0
    counts = np.zeros((n, k))
    for j in range(m):  # loop over LFs; each step is vectorised over items
        np.add.at(counts, (np.flatnonzero(voted[:, j]), hard[voted[:, j], j]), 1)
    total = counts.sum(axis=1)
    same = np.take_along_axis(counts, np.where(voted, hard, 0), axis=1)
    out = {"n_votes": voted.sum(axis=0), "coverage": voted.mean(axis=0),
           "overlap": (voted & (total[:, None] > 1)).mean(axis=0),
           "conflict": (voted & (total[:, None] - same > 0)).mean(axis=0),
           "item_conflict": (counts > 0).sum(axis=1) > 1, "item_votes": total}
    if y is not None:
        hit = (voted & (hard == y[:, None])).sum(axis=0)
        out["accuracy"] = np.divide(hit, out["n_votes"], out=np.full(m, np.nan), where=out["n_votes"] > 0)
    return out


def lfs(run: RunInputs) -> dict | None:
    L = run.votes
    if L is None:
        return None
    hard = np.asarray(L.votes)
    names = list(L.lf_names)
    classes = list(L.labels) if L.labels else [str(j) for j in range(L.cardinality)]
    k = len(classes)
    st = lf_stats(hard, k)
    gold = _gold_rows(run, L)
    dev = lf_stats(hard[gold[0]], k, gold[1]) if gold is not None else None
    rows = []
    for j, name in enumerate(names):  # one row per LF
        col = hard[:, j]
        row = {"lf": name, "polarity": [classes[c] for c in np.unique(col[col >= 0])],
               "n_votes": int(st["n_votes"][j]), "coverage": float(st["coverage"][j]),
               "overlap": float(st["overlap"][j]), "conflict": float(st["conflict"][j]),
               "errors": int(L.errors.get(name, 0))}
        if dev is not None:
            acc = dev["accuracy"][j]
            row["dev_accuracy"] = None if np.isnan(acc) else float(acc)
            row["dev_n"] = int(dev["n_votes"][j])
        rows.append(row)
    voted = (hard >= 0).astype(np.float32)
    co = voted.T @ voted  # items both LFs voted on
    agree = np.zeros_like(co)
    share = np.zeros((len(names), k))
    for c in range(k):  # loop over classes; each step is a matrix product over items
        x = (hard == c).astype(np.float32)
        agree += x.T @ x
        share[:, c] = x.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        agreement = np.where(co > 0, agree / co, np.nan)
        share = share / np.maximum(share.sum(axis=1, keepdims=True), 1)
    np.fill_diagonal(agreement, np.nan)
    per_item = st["item_votes"]
    summary = {"n_items": int(len(hard)), "coverage": float((per_item > 0).mean()),
               "overlap": float((per_item > 1).mean()), "conflict": float(st["item_conflict"].mean())}
    return {"rows": rows, "names": names, "classes": classes, "agreement": agreement, "co_votes": co,
            "vote_share": share, "summary": summary}


def distribution(run: RunInputs, lf_sec: dict | None) -> dict | None:
    lab = run.labeled
    if lab is None:
        return None
    k = len(lab.classes)
    counts = np.bincount(lab.label_index[lab.label_index >= 0], minlength=k)
    out = {"classes": lab.classes, "final": counts / max(1, counts.sum()), "counts": counts,
           "mean_proba": lab.proba.mean(axis=0)}
    if lf_sec is not None and lf_sec["classes"] == lab.classes:
        out["lf_names"], out["lf_share"] = lf_sec["names"], lf_sec["vote_share"]
    return out


def reliability_bins(conf: np.ndarray, correct: np.ndarray, n_bins: int = 10) -> dict:
    """Equal-width confidence bins: mean confidence, accuracy and count per non-empty bin, and the ECE (the same
    binning as labelmodel.gold writes into the labeled file's metadata)."""
    b = np.clip((conf * n_bins).astype(int), 0, n_bins - 1)
    cnt = np.bincount(b, minlength=n_bins)
    mc = np.bincount(b, weights=conf, minlength=n_bins)
    ac = np.bincount(b, weights=correct.astype(float), minlength=n_bins)
    keep = cnt > 0
    return {"confidence": (mc[keep] / cnt[keep]).tolist(), "accuracy": (ac[keep] / cnt[keep]).tolist(),
            "count": cnt[keep].tolist(), "ece": float(np.abs(ac - mc)[keep].sum() / max(1, cnt.sum())),
            "n": int(cnt.sum())}


def confidence(run: RunInputs) -> dict | None:
    lab = run.labeled
    if lab is None:
        return None
    model = lab.source != "human"
    out = {"covered": lab.confidence[model & ~lab.uncovered], "uncovered": lab.confidence[model & lab.uncovered]}
    gold = _gold_rows(run)
    rel = (lab.meta.get("label_model") or {}).get("reliability") or {}
    curves = {f"{name} calibration (out-of-fold)": rel[name] for name in ("before", "after")
              if isinstance(rel.get(name), dict)}
    if gold is not None and not curves:
        r, y = gold
        curves["shipped labels on gold items (in sample)"] = reliability_bins(lab.confidence[r], lab.label_index[r] == y)
    out["reliability"] = curves
    return out


def dev_eval(run: RunInputs) -> dict | None:
    lab = run.labeled
    gold = _gold_rows(run) if lab is not None else None
    if gold is None:
        return None
    r, y = gold
    pred = lab.label_index[r]
    k = len(lab.classes)
    cm = np.bincount(y * k + np.clip(pred, 0, k - 1), minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(float)
    prec = np.divide(tp, cm.sum(0), out=np.full(k, np.nan), where=cm.sum(0) > 0)
    rec = np.divide(tp, cm.sum(1), out=np.full(k, np.nan), where=cm.sum(1) > 0)
    f1 = np.divide(2 * prec * rec, prec + rec, out=np.full(k, np.nan), where=(prec + rec) > 0)
    rows = [{"label": c, "precision": prec[j], "recall": rec[j], "f1": f1[j], "support": int(cm[j].sum())}
            for j, c in enumerate(lab.classes)]
    return {"classes": lab.classes, "confusion": cm, "rows": rows, "n": int(len(y)),
            "accuracy": float(tp.sum() / len(y)), "macro_f1": float(np.nanmean(np.where(cm.sum(1) > 0, f1, np.nan)))}


def confused_pairs(run: RunInputs, dev: dict | None, top: int = 10) -> dict | None:
    """Most-confused label pairs: from gold when there is some, else the label model's own top-2 ambiguity."""
    lab = run.labeled
    if lab is None or len(lab.classes) < 2:
        return None
    k = len(lab.classes)
    if dev is not None:
        m = dev["confusion"].astype(float)
        m = m + m.T
        what = "gold items whose label-model label is the other class of the pair (both directions)"
    else:
        p = lab.proba
        o = np.argsort(-p, axis=1)[:, :2]
        a, b = np.minimum(o[:, 0], o[:, 1]), np.maximum(o[:, 0], o[:, 1])
        # Expected confusion mass: the runner-up's probability, summed per unordered pair.
        m = np.bincount(a * k + b, weights=p[np.arange(len(p)), o[:, 1]], minlength=k * k).reshape(k, k)
        what = "summed runner-up probability over items whose top two classes are the pair (no gold needed)"
    iu = np.triu_indices(k, 1)
    vals = m[iu]
    order = np.argsort(-vals, kind="stable")[:top]
    rows = [{"a": lab.classes[iu[0][i]], "b": lab.classes[iu[1][i]], "value": float(vals[i])}
            for i in order if vals[i] > 0]
    return {"rows": rows, "what": what, "from_gold": dev is not None} if rows else None


def review(run: RunInputs, top: int = 25) -> dict | None:
    rows = run.review_rows
    if not rows:
        return None
    rows = [dict(r) for r in rows[:top]]  # the votes column is added to copies: the queue read stays as read
    L = run.votes
    if L is not None and L.ids is not None:
        pos = {str(i): r for r, i in enumerate(L.ids)}
        hard = np.asarray(L.votes)
        classes = list(L.labels) if L.labels else None
        for row in rows:
            r = pos.get(str(row.get("id")))
            if r is not None:
                v = [(n, int(x)) for n, x in zip(L.lf_names, hard[r]) if x >= 0]
                row["votes"] = ", ".join(f"{n}: {classes[x] if classes else x}" for n, x in v) or "(no votes)"
    return {"rows": rows, "n_total": len(run.review_rows)}


def student(run: RunInputs) -> dict | None:
    if run.metrics is None and run.cascade is None:
        return None
    out = {"metrics": run.metrics, "curve": None, "calibration": None}
    if run.cascade is not None:
        out["curve"] = run.cascade.series()
        out["calibration"] = dict(run.cascade.calibration or {})
    return out


def rounds(run: RunInputs) -> dict | None:
    if run.rounds is None or not run.rounds.rounds:
        return None
    series: dict[str, dict] = {}
    for r in run.rounds.rounds:
        key = f"{r.get('dataset', '')} {r.get('strategy', '?')}".strip()
        s = series.setdefault(key, {"dataset": str(r.get("dataset", "")), "strategy": str(r.get("strategy", "?")),
                                    "n_labels": [], "accuracy": [], "student_accuracy": []})
        s["n_labels"].append(r.get("n_labels"))
        s["accuracy"].append(r.get("accuracy"))
        s["student_accuracy"].append(r.get("student_accuracy"))
    return {"series": series, "note": run.rounds.note}
