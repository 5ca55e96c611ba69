"""The default labeling functions: what ``llmlabel label`` runs without ``--lfs``, and what ``llmlabel auto``
writes into its run folder's ``lfs.yaml``.

========================  =====================================================================================
situation                 LFs
========================  =====================================================================================
always                    ``keyphrases`` (the taxonomy's key phrases) + ``embedding`` (MiniLM, nearest label)
with gold                 + ``knn`` and ``logreg`` over the gold; every cut ``threshold: auto`` (chosen on the
                          gold out-of-fold), as ``pipelines/known_labels_lfs.yaml``
with ``--model`` SPEC     + one ``prompted`` LF per model (zero-shot, prior matching)
multi-label taxonomy      the multi-label forms: ``keyphrases``, ``embedding``; with gold ``knn`` and
                          ``classifier``; a yes/no ``prompted`` LF per model
========================  =====================================================================================

Without gold the embedding LF votes on every item (``threshold: 0``): there is nothing to place a cut on, and
the label model weighs it. These are the LF sets ``eval/chain.py`` measures (``NO_GOLD_LFS``, ``GOLD_LFS``;
eval/results/chain.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .spec import LFSpecFile, load_lf_spec


def default_lfs(*, multi_label: bool = False, gold: bool = False, models: Sequence[str] = (),
                embedder: str | None = None) -> LFSpecFile:
    """The default LF spec for a situation (see the module docstring). ``embedder``: the embedder of the
    embedding-based LFs (None: the kinds' default).

    >>> [lf.kind for lf in default_lfs(gold=True).lfs]
    ['keyphrases', 'embedding', 'knn', 'logreg']
    >>> [lf.kind for lf in default_lfs(multi_label=True, gold=True, models=["smollm2"]).lfs]
    ['keyphrases', 'embedding', 'knn', 'classifier', 'prompted']
    """
    emb = {} if embedder is None else {"embedder": embedder}
    lfs: list[dict] = [{"kind": "keyphrases"}]
    if multi_label:
        # the multi-label forms' own defaults; knn at eval/multilabel.py's cut (a share of 0.3 of the neighbours)
        lfs.append({"name": "emb", "kind": "embedding", **emb})
        if gold:
            lfs += [{"name": "knn", "kind": "knn", **emb, "k": 10, "threshold": 0.3},
                    {"name": "classifier", "kind": "classifier", **emb}]
        if models:
            lfs.append({"name": "llm", "kind": "prompted"})
    else:
        lfs.append({"name": "emb", "kind": "embedding", **emb, "threshold": "auto" if gold else 0.0})
        if gold:
            lfs += [{"name": "knn", "kind": "knn", **emb, "k": 10, "threshold": "auto"},
                    {"name": "logreg", "kind": "logreg", **emb, "threshold": "auto"}]
        if models:
            lfs.append({"name": "llm", "kind": "prompted", "prior_correction": True})
    return LFSpecFile.model_validate({"lfs": lfs})


def describe(spec: LFSpecFile, *, multi_label: bool = False, models: Sequence[str] = ()) -> str:
    """One line naming the LFs of a spec, e.g. ``keyphrases, embedding, knn, logreg (threshold: auto)``."""
    parts = []
    for s in spec.lfs:
        if s.kind == "prompted" and not (s.model or s.models):
            parts.append(f"prompted x {len(models)} model{'s' if len(models) != 1 else ''}")
        else:
            parts.append(s.kind + (" (threshold: auto)" if getattr(s, "threshold", None) == "auto" else ""))
    return ("multi-label: " if multi_label else "") + ", ".join(parts)


def to_yaml(spec: LFSpecFile, *, header: str = "") -> str:
    """An lfs.yaml for a spec, one flow-style line per LF (only options that differ from the kind's defaults)."""
    import yaml

    lines = [f"# {x}" if x else "#" for x in header.splitlines()]
    for k in ("gold", "gold_folds"):
        if k in spec.model_fields_set:
            lines.append(yaml.safe_dump({k: getattr(spec, k)}, sort_keys=False).strip())
    lines.append("lfs:")
    for s in spec.lfs:
        d = {"kind": s.kind, **s.model_dump(exclude_defaults=True, exclude={"kind"})}
        if d.get("name") is None:
            d.pop("name", None)
        d = {"name": d.pop("name"), **d} if "name" in d else d
        lines.append("  - " + yaml.safe_dump(d, default_flow_style=True, sort_keys=False, width=1000).strip())
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class ResolvedLFs:
    """The LFs a labeling run uses: a user's lfs.yaml (``path``), or the default set (``default``: which)."""

    spec: LFSpecFile
    path: Path | None
    default: str | None = None

    @property
    def yaml(self) -> str:
        return to_yaml(self.spec, header=f"llmlabel's default LFs for this run: {self.default}\n"
                                         "Edit this file and pass it with --lfs to change them "
                                         "(every kind and option: the lfs.yaml reference in docs/).")

    def record(self) -> tuple[str, str]:
        """(what the votes' metadata names as the LF spec, its fingerprint for the manifest's ``depends_on``)."""
        from ..artifacts._format import file_hash

        if self.path is not None:
            return str(self.path), file_hash(self.path)
        import hashlib

        return f"default: {self.default}", "sha256:" + hashlib.sha256(self.yaml.encode()).hexdigest()

    def save_into(self, folder: str | Path) -> Path | None:
        """The default set as ``folder/lfs.yaml`` (what ran, to edit and pass back with ``--lfs``)."""
        if self.path is not None:
            return None
        from ..io_write import atomic_write

        out = Path(folder) / "lfs.yaml"
        if not out.is_file() or out.read_text(encoding="utf-8") != self.yaml:
            with atomic_write(out, "w") as f:
                f.write(self.yaml)
        return out


def resolve_lfs(lfs: str | Path | None, *, multi_label: bool, gold: bool, models: Sequence[str] | None) -> ResolvedLFs:
    """``lfs.yaml`` read and validated, or (``lfs=None``) the default set for the situation."""
    if lfs is not None:
        return ResolvedLFs(load_lf_spec(lfs), Path(lfs))
    spec = default_lfs(multi_label=multi_label, gold=gold, models=list(models or []))
    return ResolvedLFs(spec, None, describe(spec, multi_label=multi_label, models=list(models or [])))
