"""Bring your own label set: label names (optionally descriptions and parents) -> a full taxonomy.yaml.

``llmlabel taxonomy corpus.jsonl --labels labels.txt -o taxonomy.yaml`` keeps the user's labels exactly (no
clustering, no merging) and fills in what later stages use: a description where none is given (an LLM with
``--model``, else a template sentence), example items and key phrases from the corpus items nearest each
label by embedding. Ids are the slug of the name (parents: ``group_<slug>``), so they stay stable when the
corpus or the descriptions change.

Label files:

- ``labels.txt``: one name per line; ``name<TAB>description`` or ``name: description`` adds a description;
  blank lines and ``#`` comments are skipped.
- ``labels.yaml`` / ``.json``: a list of names or of ``{name, description, id, children}`` mappings, or a
  mapping ``name -> description | [children] | {description, id, children}``. Children make a two-level
  taxonomy (the leaves are the classes; a top-level label without children is a leaf with no parent), e.g.
  GoEmotions' ``ekman_mapping.json`` (``{"joy": ["amusement", ...], ...}``) reads as is.

>>> res = taxonomy_from_labels(["refund", "angry"], corpus, multi_label=True)   # doctest: +SKIP
>>> res.taxonomy.multi_label, res.taxonomy.ids()                                 # doctest: +SKIP
(True, ['refund', 'angry'])
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, field_validator

from ..errors import ConfigError, InputError
from ..artifacts.taxonomy import OTHER, Example, LabelDef, Taxonomy, slugify

__all__ = ["KnownLabel", "read_label_file", "taxonomy_from_labels"]

_HINT = "one name per line (.txt), or a YAML list / mapping of names (children under a parent for two levels)"


@dataclass
class KnownLabel:
    """One label as the user gave it; ``parent`` is the parent's name (two-level files)."""

    name: str
    description: str = ""
    id: str | None = None
    parent: str | None = None
    line: int | None = None


def _name(v: Any, path, line, field) -> str:
    if not isinstance(v, (str, int, float)) or isinstance(v, bool) or not " ".join(str(v).split()):
        raise ConfigError(f"a label name must be a non-empty string, got {v!r}", path=path, line=line, field=field,
                          hint=_HINT)
    return " ".join(str(v).split())


def _read_txt(path: Path) -> list[KnownLabel]:
    out = []
    for i, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        s = raw.strip()
        if not s or s.startswith("#"):
            continue
        name, desc = (s.split("\t", 1) if "\t" in s else s.split(": ", 1) if ": " in s else (s, ""))
        out.append(KnownLabel(_name(name, path, i, None), " ".join(desc.split()), line=i))
    return out


def _read_tree(path: Path) -> list[KnownLabel]:
    import yaml

    from ..yamlfile import _node_line, read_yaml

    if path.suffix.lower() == ".json":
        import json

        try:
            root, data = None, json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ConfigError(f"not valid JSON: {e.msg}", path=path, line=e.lineno, hint=_HINT) from None
    else:
        root, data = read_yaml(path, what="label file", hint=_HINT)
    if isinstance(data, dict) and isinstance(data.get("labels"), list):
        root = next((v for k, v in root.value if k.value == "labels"), None) if root is not None else None
        data, base = data["labels"], ["labels"]
    else:
        base = []
    out: list[KnownLabel] = []

    def line(loc: list) -> int | None:
        return _node_line(root, loc) if isinstance(root, yaml.Node) else None

    def one(v: Any, loc: list, parent: str | None, key: Any = None) -> None:
        where = dict(path=path, line=line(loc), field=".".join(map(str, base + loc)) or None)
        if isinstance(v, dict) and key is None and "name" not in v and len(v) == 1:
            key, v = next(iter(v.items()))  # "- joy: description" inside a list
        if key is not None:  # mapping entry: name -> description | children | {description, id, children}
            name = _name(key, **where)
            body = v if isinstance(v, dict) else {"children": v} if isinstance(v, list) else {"description": v}
        elif isinstance(v, dict):
            name, body = _name(v.get("name"), **where), v
        else:
            name, body = _name(v, **where), {}
        extra = set(body) - {"name", "description", "id", "children", "labels"}
        if extra:
            raise ConfigError(f"unknown field {sorted(extra)[0]!r} (use name, description, id, children)", **where)
        desc = body.get("description") or ""
        if not isinstance(desc, str):
            raise ConfigError(f"description of {name!r} must be a string", **where)
        kids = body.get("children", body.get("labels")) or []
        if kids and parent is not None:
            raise ConfigError(f"{name!r} is nested two levels deep: only parents and leaves are supported", **where)
        out.append(KnownLabel(name, " ".join(desc.split()), body.get("id"), parent, where["line"]))
        at = loc if isinstance(v, list) else loc + ["children"]  # where the children sit in the file
        if isinstance(kids, dict):
            for k, c in kids.items():
                one(c, at + [k], name, key=k)
        elif isinstance(kids, list):
            for j, c in enumerate(kids):
                one(c, at + [j], name)
        else:
            raise ConfigError(f"children of {name!r} must be a list or a mapping", **where)

    if isinstance(data, list):
        for j, v in enumerate(data):
            one(v, [j], None)
    elif isinstance(data, dict):
        for k, v in data.items():
            one(v, [k], None, key=k)
    else:
        raise ConfigError("expected a list or a mapping of label names", path=path, line=1, hint=_HINT)
    return out


def read_label_file(path: str | Path) -> list[KnownLabel]:
    """The labels of a ``.txt`` / ``.yaml`` / ``.yml`` / ``.json`` label file, in file order."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("label file not found", path=path, hint=_HINT)
    labels = _read_tree(path) if path.suffix.lower() in (".yaml", ".yml", ".json") else _read_txt(path)
    if not labels:
        raise ConfigError("the label file names no labels", path=path, hint=_HINT)
    _build(labels, path)  # names and ids checked now, so `auto` stops before it writes anything
    return labels


def _build(labels: Sequence[KnownLabel], path) -> list[LabelDef]:
    """LabelDefs with stable ids; a name used twice at the same level is an error naming its line."""
    parents = {lab.parent for lab in labels if lab.parent}
    seen: dict[tuple[bool, str], KnownLabel] = {}
    taken: dict[str, KnownLabel] = {}
    pid: dict[str, str] = {}
    out = []
    for lab in labels:
        is_parent = lab.name in parents and lab.parent is None
        key = (is_parent, lab.name.lower())
        if key in seen:
            raise ConfigError(f"label {lab.name!r} is listed twice (also line {seen[key].line})", path=path,
                              line=lab.line, hint="remove or rename one of them (a leaf belongs to one parent)")
        seen[key] = lab
        lid = lab.id or (("group_" if is_parent else "") + slugify(lab.name))
        if lid in taken or lid == OTHER:
            raise ConfigError(f"labels {lab.name!r} and {taken[lid].name!r} get the same id {lid!r}"
                              if lid in taken else f"id {OTHER!r} is reserved for items that fit no label",
                              path=path, line=lab.line, hint="give one of them an explicit `id:` (YAML files)")
        taken[lid] = lab
        if is_parent:
            pid[lab.name] = lid
        out.append(LabelDef(id=lid, name=lab.name, description=lab.description,
                            parent=lab.parent))  # parent name for now, id below
    for d in out:
        if d.parent is not None:
            d.parent = pid[d.parent]
    return out


class _DescReply(BaseModel):
    description: str = Field(min_length=1, json_schema_extra={"maxLength": 160})

    @field_validator("description")
    @classmethod
    def _cut(cls, v: str) -> str:
        return " ".join(v.split())[:160]


def _template(lab: LabelDef) -> str:
    kp = f" (typical words: {', '.join(lab.keyphrases[:4])})" if lab.keyphrases else ""
    return f"Items about {lab.name}{kp}."


def _llm_descriptions(model, leaves: list[LabelDef], instruction: str, engine_kwargs: dict,
                      info: dict) -> tuple[str, str]:
    """Fill in the leaves' missing descriptions; returns (prompt hash, engine spec)."""
    from ..llm import LLM, load_engine, usage_log
    from ..llm.prompting import prompt_hash, quote_text
    from .tnt import _clean, _snippet, fill, load_prompt

    engine = model if isinstance(model, LLM) else load_engine(str(model), **engine_kwargs)
    tpl = load_prompt("taxonomy_describe_label")
    todo = [lab for lab in leaves if not lab.description]
    prompts = [fill(tpl, instruction=instruction or "label the texts", label=lab.name,
                    keyphrases=", ".join(lab.keyphrases[:8]) or "(none)",
                    examples="\n".join(quote_text(_snippet(e.text)) for e in lab.examples[:5]) or "(none)")
               for lab in todo]
    with usage_log.stage("taxonomy"):
        replies = engine.generate(prompts, json_schema=_DescReply, max_tokens=100, on_error="keep")
    for lab, r in zip(todo, replies):
        if isinstance(r.parsed, dict):
            r_desc = _DescReply.model_validate(r.parsed).description
        else:
            r_desc = r.parsed.description if r.parsed is not None else ""
        r_desc = _clean(r_desc)  # small models emit control characters
        if r.error is None and r_desc:
            lab.description = r_desc
        else:
            info["llm_fallbacks"] = info.get("llm_fallbacks", 0) + 1
    info["llm_described"] = len(todo) - info.get("llm_fallbacks", 0)
    return prompt_hash(tpl), engine.spec


def _nearest_examples(sim: np.ndarray, texts: list[str], ids: list[str], n: int,
                      max_chars: int = 200) -> list[list[Example]]:
    """Up to ``n`` distinct texts most similar to each label (columns of ``sim``)."""
    import re

    m = min(len(texts), 20 * n)
    top = np.argpartition(-sim, m - 1, axis=0)[:m] if m < len(texts) else np.arange(len(texts))[:, None].repeat(
        sim.shape[1], 1)
    out = []
    for j in range(sim.shape[1]):
        cand = top[:, j][np.argsort(-sim[top[:, j], j], kind="stable")]
        seen, ex = set(), []
        for i in cand:
            key = re.sub(r"\W+", " ", texts[i].lower()).strip()
            if key in seen:
                continue
            seen.add(key)
            t = " ".join(texts[i].split())
            ex.append(Example(id=ids[i], text=t if len(t) <= max_chars else t[: max_chars - 1] + "…"))
            if len(ex) >= n:
                break
        out.append(ex)
    return out


def taxonomy_from_labels(labels: str | Path | Sequence[str] | Sequence[KnownLabel], corpus: Any = None,
                         output: str | Path | None = None, *, assignments: str | Path | None = None,
                         cache: str | Path | None = None, no_cache: bool = False, multi_label: bool = False, model: Any = None, embedder: Any = None,
                         instruction: str = "", examples: int = 3, keyphrases: int = 8,
                         sample: int | None = None, seed: int = 0, text_field: str | None = None,
                         id_field: str | None = None, progress: bool = False,
                         engine_kwargs: dict | None = None):
    """A :class:`~llmlabel.taxonomy.TaxonomyResult` whose taxonomy keeps exactly the given labels.

    ``labels``: a label file path (see the module doc), a list of names, or :class:`KnownLabel` rows.
    ``corpus`` (optional; a path or a list of texts): items are embedded (``embedder``: auto as in
    :func:`~llmlabel.taxonomy.induce_taxonomy`) and each leaf gets the ``examples`` nearest items to its
    name + description and the c-TF-IDF ``keyphrases`` of the items nearest to it; the assignments are each
    item's nearest leaf. ``model``: an LLM writes the missing descriptions (else a template sentence).
    ``output``: taxonomy.yaml to write with its companions (as :func:`~llmlabel.taxonomy.induce_taxonomy`);
    ``cache`` / ``no_cache``: the LLM answer cache.
    """
    from . import naming
    from .items import TaxonomyResult, _dedupe, load_items
    from .labeldefs import embed_distinct, embed_texts

    t0 = time.perf_counter()
    src = Path(labels) if isinstance(labels, (str, Path)) else None
    rows = (read_label_file(src) if src is not None else
            [lab if isinstance(lab, KnownLabel) else KnownLabel(str(lab)) for lab in labels])
    if not rows:
        raise ConfigError("no labels given", hint=_HINT)
    defs = _build(rows, src)
    tax = Taxonomy(labels=defs, instruction=instruction, multi_label=multi_label)
    leaves = tax.leaves()
    info: dict[str, Any] = {"labels": len(leaves), "items_read": 0, "distinct_texts": 0}
    made: dict[str, Any] = {"source": "labels", "label_file": str(src) if src else None, "seed": seed,
                            "engine": None, "embedder": None}
    ids: list[str] = []
    assign: list[str] = []
    scores = np.zeros(0, dtype=np.float32)
    if corpus is not None:
        ids, texts, read = load_items(corpus, text_field=text_field, id_field=id_field, sample=sample, seed=seed)
        info.update(read)
        if not texts:
            raise InputError("the corpus has no non-empty texts",
                             path=str(corpus) if isinstance(corpus, (str, Path)) else None, hint="check --text-field")
        uniq, inv = _dedupe(texts)
        emb, utexts, x = embed_distinct(texts, uniq, embedder, info, progress)
        q = embed_texts(emb, [f"{lab.name}. {lab.description}".strip() if lab.description else lab.name
                              for lab in leaves])
        sim = x @ q.T  # (distinct items, leaves)
        near = sim.argmax(1)
        phrases = naming.keyphrases(utexts, near, len(leaves), top=keyphrases, seed=seed)
        exs = _nearest_examples(sim, utexts, [ids[i] for i in uniq], examples)
        for lab, ph, ex in zip(leaves, phrases, exs):
            lab.keyphrases, lab.examples = ph, ex
        made.update(embedder=emb.name, items=len(texts), distinct_texts=len(uniq))
        leaf_ids = np.asarray([lab.id for lab in leaves], dtype=object)
        assign = leaf_ids[near[inv]].tolist()
        scores = sim[np.arange(len(uniq)), near][inv].astype(np.float32)
        if not multi_label:  # nearest-label share is a rough single-label estimate; meaningless when multi
            tally = np.bincount(near[inv], minlength=len(leaves)) / len(texts)
            for lab, s in zip(leaves, tally):
                lab.share = round(float(s), 4)
    if model is not None:
        h, made["engine"] = _llm_descriptions(model, leaves, instruction, engine_kwargs or {}, info)
        made["prompt_hashes"] = {"taxonomy_describe_label": h}
    for lab in tax.labels:
        if not lab.description:
            kids = [k.name for k in tax.labels if k.parent == lab.id]
            lab.description = (f"Groups {', '.join(kids)}." if kids else _template(lab))
    tax.made_with = {k: v for k, v in made.items() if v is not None}
    info["other_share"] = 0.0
    info["seconds"] = round(time.perf_counter() - t0, 2)
    res = TaxonomyResult(tax, ids, assign, scores, info)
    if output is not None:
        from .report import write_outputs

        res.paths = write_outputs(res, output, assignments=assignments)
    return res
