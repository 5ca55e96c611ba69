"""Infer-Retrieve-Rank as a DSPy program (D'Oosterlinck et al., "In-Context Learning for Extreme Multi-Label
Classification"): an LLM infers label-like queries from the text, the retriever maps them (and the text) onto
the label space, an LLM reranks the shortlist.

Outputs are always labels from the label space: the Rank step's reply is matched against the shortlist
(exact, case-insensitive, or a 1-based shortlist number) and anything else is dropped; the rest of the
shortlist follows in retrieval order. Replies that do not parse (small or random models) fall back to
the retrieval order and are counted (``stats``), never a crash.

Two ways to run it, giving the same prompts (and so sharing cache entries):

- ``program(text=...)``: one item, through DSPy (``dspy.configure(lm=dspy_lm(engine))``); used by optimisers.
- ``program.predict_many(texts)``: whole batches straight to the engine (what vLLM needs for throughput).

>>> from llmlabel.llm import load_engine
>>> from llmlabel.xmc import load_labels, build_retriever
>>> space = load_labels("skills.txt")                                            # doctest: +SKIP
>>> irr = InferRetrieveRank(build_retriever("wordllama+bm25", space), engine=load_engine("hf:..."))  # doctest: +SKIP
>>> irr.predict_many(["We need a Python developer"], k=5)[0]["labels"]           # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import dspy

from ..errors import InputError
from ..io_records import read_json
from ..llm.prompting import fill, load_prompt
from ..llm.dspy_lm import dspy_lm  # noqa: F401  (sets LITELLM_LOCAL_MODEL_COST_MAP before dspy talks to litellm)

__all__ = ["InferRetrieveRank", "IRRStats", "prompt_text"]


def prompt_text(name: str) -> str:
    return load_prompt(name).strip()


class InferQueries(dspy.Signature):
    """Write short label-like phrases for the text."""

    text: str = dspy.InputField()
    queries: list[str] = dspy.OutputField(desc="1-8 short phrases, each like a label name")


class RankLabels(dspy.Signature):
    """Return the shortlist entries that apply to the text, best first."""

    text: str = dspy.InputField()
    options: list[str] = dspy.InputField(desc="candidate labels")
    ranked: list[str] = dspy.OutputField(desc="candidates copied exactly from options, most relevant first")


class _Shared:
    """Holds heavy objects (retriever, engine) so DSPy's deepcopy of the program shares them."""

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __deepcopy__(self, memo):
        return self


@dataclass
class IRRStats:
    items: int = 0
    infer_unparsed: int = 0  # Infer replies that did not parse: the text alone was the query
    rank_unparsed: int = 0  # Rank replies that did not parse: retrieval order kept
    rank_dropped: int = 0  # ranked entries that were not on the shortlist (ignored)
    truncated: int = 0  # texts cut to max_text_chars before prompting


class InferRetrieveRank(dspy.Module):
    """Infer -> Retrieve -> Rank. ``engine`` (an llmlabel :class:`~llmlabel.llm.LLM`) is used by
    :meth:`predict_many`; the DSPy path uses the LM in ``dspy.settings``. ``infer``/``rank`` can be turned
    off (``use_infer=False``: the text alone is the query; ``use_rank=False``: retrieval order)."""

    def __init__(self, retriever, *, engine=None, task: str = "labels", rank_topn: int = 20, k: int = 10,
                 max_queries: int = 8, use_infer: bool = True, use_rank: bool = True, max_tokens: int = 256,
                 max_text_chars: int = 4000, query_weight: float = 1.0) -> None:
        super().__init__()
        window = getattr(engine, "max_length", None)
        if window:
            # Room for the item's text: the window less the reply and the instructions/shortlist (~600
            # tokens), shared with up to 3 demo texts; ~3 characters a token is a conservative average.
            max_text_chars = min(max_text_chars, max(200, (int(window) - max_tokens - 600) // 4 * 3))
        self._retriever = _Shared(retriever)
        self._engine = _Shared(engine)
        self.config = dict(task=task, rank_topn=int(rank_topn), k=int(k), max_queries=int(max_queries),
                           use_infer=bool(use_infer), use_rank=bool(use_rank), max_tokens=int(max_tokens),
                           max_text_chars=int(max_text_chars), query_weight=float(query_weight))
        self.infer = dspy.Predict(InferQueries.with_instructions(fill(prompt_text("xmc_infer"), task=task)))
        self.rank = dspy.Predict(RankLabels.with_instructions(fill(prompt_text("xmc_rank"), task=task)))
        self.stats = IRRStats()

    @property
    def retriever(self):
        return self._retriever.obj

    @property
    def labels(self) -> list[str]:
        return self.retriever.space.labels

    # ------------------------------------------------------------------ pieces shared by both paths
    def _clip(self, text: str) -> str:
        n = self.config["max_text_chars"]
        if len(text) > n:
            self.stats.truncated += 1
            return text[:n]
        return text

    def _queries(self, parsed: Any) -> list[str]:
        if not isinstance(parsed, (list, tuple)):
            return []
        out: list[str] = []
        for q in parsed:
            q = " ".join(str(q).split())[:200]
            if q and q not in out:
                out.append(q)
        return out[: self.config["max_queries"]]

    def _shortlist(self, texts: list[str], queries: list[list[str]], n: int) -> list[list[tuple[str, float]]]:
        # Inferred queries add query_weight x (max over queries of their fused score) to the text's score.
        return self.retriever.retrieve(texts, n, extra_queries=queries, expand_weight=self.config["query_weight"])

    def _merge(self, ranked: Any, shortlist: list[str]) -> list[str]:
        """Rank reply mapped onto the shortlist (exact, case-insensitive, or a 1-based number), then the rest."""
        by_lower = {s.casefold(): s for s in shortlist}
        out: list[str] = []
        for r in ranked if isinstance(ranked, (list, tuple)) else []:
            r = " ".join(str(r).split())
            lab = by_lower.get(r.casefold())
            if lab is None:
                m = re.fullmatch(r"\[?(\d+)\]?\.?", r)
                if m and 1 <= int(m.group(1)) <= len(shortlist):
                    lab = shortlist[int(m.group(1)) - 1]
            if lab is None:
                self.stats.rank_dropped += 1
            elif lab not in out:
                out.append(lab)
        return out + [s for s in shortlist if s not in out]

    def _result(self, text_queries: list[str], shortlist: list[tuple[str, float]], ranked: Any, k: int) -> dict:
        score = dict(shortlist)
        names = [s for s, _ in shortlist]
        top = names[: self.config["rank_topn"]]
        order = self._merge(ranked, top) if ranked is not None else top
        order = order + [s for s in names if s not in order]
        return {"labels": order[:k], "scores": [score[s] for s in order[:k]], "queries": text_queries}

    # ------------------------------------------------------------------ DSPy path (one item)
    def forward(self, text: str, k: int | None = None):
        k = k or self.config["k"]
        text = self._clip(text)
        self.stats.items += 1
        queries: list[str] = []
        if self.config["use_infer"]:
            try:
                queries = self._queries(self.infer(text=text).queries)
            except Exception:  # noqa: BLE001 - an unparsable reply means "no extra queries"
                self.stats.infer_unparsed += 1
        n = max(k, self.config["rank_topn"])
        shortlist = self._shortlist([text], [queries], n)[0]
        ranked = None
        if self.config["use_rank"]:
            try:
                ranked = self.rank(text=text, options=[s for s, _ in shortlist[: self.config["rank_topn"]]]).ranked
            except Exception:  # noqa: BLE001
                self.stats.rank_unparsed += 1
        res = self._result(queries, shortlist, ranked, k)
        # (``labels`` is a method name on dspy.Example, so the prediction field is ``ranked_labels``)
        return dspy.Prediction(ranked_labels=res["labels"], scores=res["scores"], queries=queries)

    # ------------------------------------------------------------------ batched path
    def _batch_predict(self, predictor, inputs: list[dict], field: str) -> list[Any]:
        """Format with DSPy's ChatAdapter (demos included), generate in one engine call, parse each reply."""
        engine = self._engine.obj
        adapter = dspy.ChatAdapter(use_json_adapter_fallback=False)
        msgs = [adapter.format(predictor.signature, predictor.demos, inp) for inp in inputs]
        comps = engine.generate(msgs, max_tokens=self.config["max_tokens"], temperature=0.0,
                                progress=len(msgs) > 20)
        out: list[Any] = []
        for c in comps:
            try:
                out.append(adapter.parse(predictor.signature, c.text)[field])
            except Exception:  # noqa: BLE001 - counted by the caller
                out.append(None)
        return out

    def predict_many(self, texts: list[str], k: int | None = None) -> list[dict]:
        """Run the program on many texts: each LLM step is one batched engine call (cached)."""
        k = k or self.config["k"]
        texts = [self._clip(t) for t in texts]
        self.stats.items += len(texts)
        engine = self._engine.obj
        queries: list[list[str]] = [[] for _ in texts]
        if self.config["use_infer"] and engine is not None:
            raw = self._batch_predict(self.infer, [{"text": t} for t in texts], "queries")
            self.stats.infer_unparsed += sum(r is None for r in raw)
            queries = [self._queries(r) for r in raw]
        n = max(k, self.config["rank_topn"])
        shortlists = self._shortlist(texts, queries, n)
        ranked: list[Any] = [None] * len(texts)
        if self.config["use_rank"] and engine is not None:
            top = self.config["rank_topn"]
            ranked = self._batch_predict(self.rank, [{"text": t, "options": [s for s, _ in sl[:top]]}
                                                     for t, sl in zip(texts, shortlists)], "ranked")
            self.stats.rank_unparsed += sum(r is None for r in ranked)
        return [self._result(q, sl, r, k) for q, sl, r in zip(queries, shortlists, ranked)]

    # ------------------------------------------------------------------ persistence
    def save_json(self, path: str | Path, **extra: Any) -> Path:
        """Save the learned state (instructions + demos of Infer and Rank) and the config as one JSON file."""
        from ..io_write import atomic_write

        state = {"format": "llmlabel.xmc.InferRetrieveRank/1", "config": self.config,
                 "predictors": {name: p.dump_state() for name, p in self.named_predictors()}, **extra}
        path = Path(path)
        with atomic_write(path) as f:
            json.dump(state, f, ensure_ascii=False, indent=1, default=str)
        return path

    def load_json(self, path: str | Path) -> "InferRetrieveRank":
        path = Path(path)
        state = read_json(path, what="program file")
        if not isinstance(state, dict) or state.get("format") != "llmlabel.xmc.InferRetrieveRank/1":
            raise InputError("not an llmlabel Infer-Retrieve-Rank program file", path=path,
                             hint="save one with llmlabel xmc --train ... --save-program FILE")
        self.config.update({k: v for k, v in state.get("config", {}).items() if k in self.config})
        preds = dict(self.named_predictors())
        for name, st in state.get("predictors", {}).items():
            if name in preds:
                preds[name].load_state(st)
                preds[name].demos = [d if isinstance(d, dspy.Example) else dspy.Example(**d)
                                     for d in preds[name].demos]
        return self

    def summary(self) -> dict:
        return asdict(self.stats)
