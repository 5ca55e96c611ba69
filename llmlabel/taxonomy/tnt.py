"""The LLM path: TnT-LLM (generate -> update -> review over minibatches) and the cheaper cluster-seeded mode.

Every step is a prompt file in ``prompts/taxonomy_*.txt`` and a JSON-schema call through the engine layer
(validated, retried, cached: a second identical run makes no model calls). A reply that never validates is
saved to ``<output stem>.llm-<step>-reply.txt`` (``taxonomy.llm-...`` without an output) and raised as :class:`~llmlabel.errors.OutputParseError`; in
seeded mode one bad cluster name only falls back to its key-phrase name (counted in the stats).

- ``seeded``: one call per cluster of the no-LLM path (name + description from key phrases and examples),
  then one call that lists duplicate labels to merge. Both are lenient: a reply that fails keeps the
  key-phrase name / merges nothing (counted as ``llm_fallbacks``, raw reply saved).
- ``tnt``: minibatches of texts; the first generates a taxonomy under the instruction, each next one
  updates it, a final review merges/splits/sharpens. Items are then assigned to the nearest label by
  embedding (name + description, moved towards the items it gets); misfits are ``other``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field, create_model, field_validator

from ..errors import ConfigError, OutputParseError
from ..llm.prompting import fill, load_prompt, prompt_hash, quote_text
from ..artifacts.taxonomy import LabelDef, Taxonomy, slugify
from . import naming
from .labeldefs import unique_id

BATCH_ITEMS = 20  # texts per TnT minibatch
MAX_BATCHES = 6
SNIPPET_CHARS = 300


class NameReply(BaseModel):
    # maxLength goes to the grammar as a hint (engines that enforce it stop early); over-long replies from
    # engines that do not are cut here instead of failing validation.
    name: str = Field(min_length=1, json_schema_extra={"maxLength": 50})
    description: str = Field(json_schema_extra={"maxLength": 160})

    @field_validator("name", "description")
    @classmethod
    def _cut(cls, v: str, info) -> str:
        return v[: 50 if info.field_name == "name" else 160]


class LabelsReply(BaseModel):
    labels: list[NameReply] = Field(min_length=1)


class MergeReply(BaseModel):
    merge: list[list[int]] = Field(default_factory=list, json_schema_extra={"maxItems": 30})


def _labels_schema(max_labels: int) -> type[LabelsReply]:
    """LabelsReply whose JSON schema also says maxItems=max_labels (longer lists are cut, not rejected)."""
    return create_model(f"LabelsReply{max_labels}", __base__=LabelsReply,
                        labels=(list[NameReply], Field(min_length=1, json_schema_extra={"maxItems": int(max_labels)})))


def _snippet(t: str, n: int = SNIPPET_CHARS) -> str:
    t = " ".join(t.split())
    return t if len(t) <= n else t[: n - 1] + "…"


def _clean(s: str) -> str:
    """One line, no control characters (small models emit them)."""
    return " ".join("".join(ch for ch in s if ch.isprintable() or ch.isspace()).split())


_META_WORDS = {"this", "that", "the", "a", "an", "is", "of", "these", "group", "groups", "text", "texts", "item",
               "items", "collection", "list", "label", "labels", "name", "category", "cluster", "other", "misc"}


def usable_name(name: str) -> bool:
    """Whether an LLM's label name is worth keeping over the key-phrase name: short (the prompt asks for 2-5
    words), and about the texts rather than about the task ("This text is a collection of...").

    >>> usable_name("Card delivery"), usable_name("This group"), usable_name("top-up-failure-2-words-1-label")
    (True, False, False)
    """
    words = re.findall(r"[^\W_]+", name.lower())
    return 0 < len(words) <= 6 and not set(words) <= _META_WORDS and not (set(words) & {"text", "texts"}
                                                                          and len(words) > 3)


class _Steps:
    """Runs one structured call per prompt; saves raw replies that never validated."""

    def __init__(self, engine, raw_dir: Path | None, info: dict, prefix: str = "taxonomy") -> None:
        self.engine, self.raw_dir, self.info, self.prefix = engine, raw_dir, info, prefix

    def __call__(self, step: str, prompts: list[str], schema: Any, max_tokens: int, *, strict: bool = True):
        from ..llm import usage_log

        with usage_log.stage("taxonomy"):
            comps = self.engine.generate(prompts, json_schema=schema, max_tokens=max_tokens, on_error="keep")
        out = []
        for i, c in enumerate(comps):
            parsed = c.parsed
            if isinstance(parsed, dict):
                parsed = (LabelsReply if "labels" in parsed else MergeReply).model_validate(parsed)
            if c.error is not None or parsed is None:
                path = self._save(step if len(comps) == 1 else f"{step}-{i}", c.text)
                if strict:
                    raise OutputParseError(f"the model's {step} reply did not match the JSON schema after retries "
                                           f"({c.error}); raw reply saved", raw=c.text, path=path,
                                           hint="use a stronger model or raise max tokens")
                self.info["llm_fallbacks"] = self.info.get("llm_fallbacks", 0) + 1
                out.append(None)
            else:
                out.append(parsed)
        return out

    def _save(self, step: str, text: str) -> Path | None:
        if self.raw_dir is None:
            return None
        p = Path(self.raw_dir) / f"{self.prefix}.llm-{step}-reply.txt"  # named after the output, like its side files
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        self.info.setdefault("raw_replies", []).append(str(p))
        return p


def llm_taxonomy(model: Any, tax: Taxonomy, x: np.ndarray, texts: list[str], ids: list[str], lab: np.ndarray,
                 sc: np.ndarray, embedder, *, instruction: str, max_labels: int, levels: int, mode: str, seed: int,
                 engine_kwargs: dict, raw_dir: str | Path | None = None, raw_prefix: str = "taxonomy",
                 progress: bool = False, batch_items: int = BATCH_ITEMS, max_batches: int = MAX_BATCHES, snippet_chars: int = SNIPPET_CHARS,
                 max_tokens: int | None = None):
    """Replace the key-phrase labels of the no-LLM path (seeded) or build labels from raw batches (tnt).

    ``max_tokens`` caps every reply (default: enough for ``max_labels`` names and descriptions)."""
    from ..llm import LLM, load_engine

    engine = model if isinstance(model, LLM) else load_engine(str(model), **engine_kwargs)
    mode = "seeded" if mode == "auto" else mode
    if mode not in ("seeded", "tnt"):
        raise ConfigError(f"unknown taxonomy mode {mode!r}", field="mode", hint="use 'seeded' or 'tnt'")
    info: dict[str, Any] = {"engine": engine.spec, "mode": mode}
    steps = _Steps(engine, Path(raw_dir) if raw_dir is not None else None, info, raw_prefix)
    purpose = instruction or "group the texts by what they are about"
    if mode == "seeded":
        tax, lab, sc = _seeded(steps, tax, x, texts, ids, lab, sc, purpose, max_labels, max_tokens)
        names = ["taxonomy_name_cluster", "taxonomy_merge_clusters"]
    else:
        tax, lab, sc = _tnt(steps, x, texts, ids, purpose, max_labels, seed, embedder, batch_items, max_batches,
                            snippet_chars, max_tokens)
        names = ["taxonomy_generate", "taxonomy_update", "taxonomy_review"]
    tax.made_with["prompt_hashes"] = {n: prompt_hash(load_prompt(n)) for n in names}
    return tax, lab, sc, info


def _seeded(steps, tax, x, texts, ids, lab, sc, purpose, max_labels, max_tokens=None):
    leaves = tax.leaves()
    tpl = load_prompt("taxonomy_name_cluster")
    prompts = []
    for lab_ in leaves:
        ex = "\n".join(quote_text(_snippet(e.text)) for e in lab_.examples[:5])
        prompts.append(fill(tpl, instruction=purpose, keyphrases=", ".join(lab_.keyphrases[:8]) or "(none)",
                            examples=ex or "(none)"))
    replies = steps("name", prompts, NameReply, min(120, max_tokens or 120), strict=False)
    taken = {p.id for p in tax.labels if p not in leaves}
    for lab_, r in zip(leaves, replies):
        if r is not None and usable_name(_clean(r.name)):
            lab_.name = _clean(r.name)
            lab_.description = _clean(r.description) or lab_.description
        elif r is not None:  # a weak model restating the task: the key-phrase name says more
            steps.info["llm_names_rejected"] = steps.info.get("llm_names_rejected", 0) + 1
        lab_.id = unique_id(slugify(lab_.name), taken)
    _dedupe_names(leaves)
    listing = "\n".join(f"{i + 1}. {lab_.name}: {lab_.description}" for i, lab_ in enumerate(leaves))
    merge = steps("merge", [fill(load_prompt("taxonomy_merge_clusters"), instruction=purpose, labels=listing,
                                 max_labels=str(max_labels))], MergeReply, min(200, max_tokens or 200),
                   strict=False)[0]
    group = np.arange(len(leaves))
    for g in (merge.merge if merge is not None else []):  # a failed merge reply merges nothing
        members = sorted({i - 1 for i in g if 1 <= i <= len(leaves)})
        for m in members[1:]:
            group[group == group[m]] = group[members[0]]
    keep = sorted(set(group.tolist()))
    if len(keep) < len(leaves):
        remap = {g: j for j, g in enumerate(keep)}
        new_of = np.array([remap[g] for g in group])
        for g in keep:  # the biggest member keeps its name; the others' key phrases and examples join it
            members = [leaves[i] for i in np.flatnonzero(group == g)]
            head = members[0]
            for m in members[1:]:
                head.keyphrases = list(dict.fromkeys(head.keyphrases + m.keyphrases))[:10]
                head.examples = (head.examples + m.examples)[:5]
        dropped = {leaves[i].id for i in range(len(leaves)) if i not in keep}
        tax.labels = [lab_ for lab_ in tax.labels if lab_.id not in dropped]
        lab = np.where(lab >= 0, new_of[np.maximum(lab, 0)], -1)
        steps.info["llm_merged"] = len(leaves) - len(keep)
    return tax, lab, sc


def _tnt(steps, x, texts, ids, purpose, max_labels, seed, embedder, batch_items, max_batches, snippet_chars,
         max_tokens=None):
    from .refine import assign_by_prototypes, label_prototypes

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    n_batches = int(min(max_batches, max(1, int(np.ceil(len(texts) / batch_items)))))
    batches = [order[b * batch_items:(b + 1) * batch_items] for b in range(n_batches)]
    schema = _labels_schema(max_labels)
    budget = 40 + 260 * max_labels  # tokens: a cap (name <= 50 chars + description <= 160 chars per label)
    budget = min(budget, max_tokens or budget)

    def block(idx) -> str:
        return "\n".join(quote_text(_snippet(texts[i], snippet_chars)) for i in idx)

    def listing(labels) -> str:
        return "\n".join(f"- {lab_.name}: {lab_.description}" for lab_ in labels)

    cur = steps("generate", [fill(load_prompt("taxonomy_generate"), instruction=purpose, texts=block(batches[0]),
                                  max_labels=str(max_labels))], schema, budget)[0].labels
    for b, idx in enumerate(batches[1:], start=1):
        cur = steps(f"update-{b}", [fill(load_prompt("taxonomy_update"), instruction=purpose, labels=listing(cur),
                                         texts=block(idx), max_labels=str(max_labels))], schema, budget)[0].labels
    cur = steps("review", [fill(load_prompt("taxonomy_review"), instruction=purpose, labels=listing(cur),
                                max_labels=str(max_labels))], schema, budget)[0].labels
    taken: set[str] = set()
    labels = []
    seen: set[str] = set()
    for r in cur[:max_labels]:
        name = _clean(r.name) or "label"
        if name.lower() in seen:
            continue
        seen.add(name.lower())
        labels.append(LabelDef(id=unique_id(slugify(name), taken), name=name, description=_clean(r.description)))
    tax = Taxonomy(labels=labels)
    cent = label_prototypes(tax, embedder)
    lab, sc = assign_by_prototypes(x, cent)
    phrases = naming.keyphrases(texts, lab, len(labels), seed=seed)
    examples = naming.representatives(x, lab, cent, texts, ids)
    for lab_, ph, ex in zip(labels, phrases, examples):
        lab_.keyphrases, lab_.examples = ph, ex
    return tax, lab, sc


def _dedupe_names(labels: list[LabelDef]) -> None:
    seen: dict[str, int] = {}
    for lab_ in labels:
        key = lab_.name.lower()
        if key in seen:
            seen[key] += 1
            lab_.name = f"{lab_.name} ({seen[key]})"
        else:
            seen[key] = 1
