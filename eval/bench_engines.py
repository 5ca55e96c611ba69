"""Engine-layer throughput: choose vs generate-and-parse, our layer vs the raw call it wraps, cache hits.

Random-weight models (answers are noise; speed is what is measured): a tiny Qwen2 and a model with
Qwen2-0.5B's real shape (24 layers, hidden 896, vocabulary 151,936). Every ratio compares two
measurements taken in the same process, interleaved, best of ``--repeats``.

    python eval/bench_engines.py                       # CPU: writes eval/results/engines-cpu.json + engines.md
    python eval/bench_engines.py --device cuda         # GPU: engines-cuda.json, same markdown
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from llmlabel.llm import load_engine  # noqa: E402
from llmlabel.llm.cache import Cache  # noqa: E402
from llmlabel.testing import build_tiny_model  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DATA  # noqa: E402  (the one data path: $LLMLABEL_EVAL_DATA or ../shared/data)
SIZES = {
    "tiny": dict(hidden_size=64, layers=2),
    "qwen2-0.5b-shape": dict(hidden_size=896, layers=24, num_attention_heads=14, num_key_value_heads=2,
                             intermediate_size=4864, vocab_size=151936, max_position_embeddings=4096),
}


def texts_and_labels() -> tuple[list[str], list[str]]:
    """Banking77 test texts and its 77 intent names when the eval data is there; else stand-ins."""
    try:
        with open(DATA / "banking77" / "test.csv", newline="") as f:
            texts = [r["text"] for r in csv.DictReader(f)]
        with open(DATA / "banking77" / "train.csv", newline="") as f:
            texts += [r["text"] for r in csv.DictReader(f)]
        labels = [c.replace("_", " ") for c in json.loads((DATA / "banking77" / "categories.json").read_text())]
        return texts, labels
    except OSError:
        texts = [f"my card payment number {i} was declined twice, can you help me get a refund?" for i in range(4000)]
        return texts, [f"intent number {i}" for i in range(77)]


def prompt_for(text: str, labels: list[str]) -> str:
    return f"Classify the customer message.\n<text>\n{text}\n</text>\nAnswer with one of: {', '.join(labels)}."


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def raw_generate(eng, prompts, max_new_tokens, batch_size):
    """What a user would write by hand with transformers: tokenize, generate, decode."""
    import torch

    tok, model = eng.tokenizer, eng.hf_model
    tok.padding_side = "left"
    out = []
    for b in range(0, len(prompts), batch_size):
        texts = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                         add_generation_prompt=True) for p in prompts[b : b + batch_size]]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(eng.device)
        with torch.inference_mode():
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id, temperature=None, top_p=None, top_k=None)
        out += tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    return out


def naive_choose(eng, prompts, labels):
    """A plain scoring loop: each prompt+label scored as a full sequence, labels batched per prompt."""
    import torch

    tok, model = eng.tokenizer, eng.hf_model
    choice_ids = [tok(c, add_special_tokens=False)["input_ids"] for c in labels]
    out = np.zeros((len(prompts), len(labels)))
    for i, p_ids in enumerate(eng.encode_prompts(prompts)):
        seqs = [p_ids + c for c in choice_ids]
        n = max(map(len, seqs))
        ids = torch.full((len(seqs), n), tok.pad_token_id)
        for j, s in enumerate(seqs):
            ids[j, : len(s)] = torch.tensor(s)
        ids = ids.to(eng.device)
        with torch.inference_mode():
            logp = torch.log_softmax(model(input_ids=ids).logits.float(), -1)
        for j, c in enumerate(choice_ids):
            pos = torch.arange(len(p_ids) - 1, len(p_ids) - 1 + len(c), device=eng.device)
            out[i, j] = logp[j, pos, torch.tensor(c, device=eng.device)].sum().item()
    return out


def parse_label(text: str, labels: list[str]) -> int:
    t = text.strip().lower()
    for j, lab in enumerate(labels):
        if t.startswith(lab.lower()):
            return j
    return -1


def build(path: Path, name: str) -> Path:
    # A BPE trained on the benchmark's own texts and label names, so token counts look like a real
    # tokenizer's (labels of 2-5 tokens), not like a 512-token toy vocabulary's.
    texts, labels = texts_and_labels()
    return build_tiny_model(path, tokenizer_vocab=8000, tokenizer_texts=texts[:3000] + labels * 20, **SIZES[name])


def bench_size(name: str, device: str, n: int, repeats: int, tmp: Path, naive_items: int) -> dict:
    path = build(tmp / name, name)
    texts, labels77 = texts_and_labels()
    labels8 = labels77[:7] + ["none of these"]
    eng = load_engine(f"hf:{path}", cache=False, device=device, batch_size=16)
    res: dict = {"model": name, "params_M": round(sum(p.numel() for p in eng.hf_model.parameters()) / 1e6, 1),
                 "items": n}
    for k, labels in (("8", labels8), ("77", labels77)):
        prompts = [prompt_for(t, labels) for t in texts[:n]]
        max_label_tokens = max(len(eng.tokenizer(x, add_special_tokens=False)["input_ids"]) for x in labels)
        eng.choose(prompts[:2], labels)  # warm-up
        t_layer = best_of(lambda: eng.choose(prompts, labels), repeats)
        t_raw = best_of(lambda: [eng._choose_batch(prompts[b : b + 16], labels) for b in range(0, n, 16)], repeats)
        m = min(n, naive_items)  # the plain loop is slow: time it on a few items, report items/s
        t_naive = best_of(lambda: naive_choose(eng, prompts[:m], labels), 1) * n / m if m else float("nan")
        t_gen = best_of(lambda: [parse_label(c.text, labels)
                                 for c in eng.generate(prompts, max_tokens=max_label_tokens)], repeats)
        res[f"choices_{k}"] = {
            "max_label_tokens": max_label_tokens,
            "choose_items_s": n / t_layer, "choose_raw_items_s": n / t_raw,
            "naive_scoring_items_s": n / t_naive, "generate_parse_items_s": n / t_gen,
            "layer_vs_raw": t_raw / t_layer, "choose_vs_generate": t_gen / t_layer,
            "choose_vs_naive": t_naive / t_layer,
        }
        print(name, k, json.dumps(res[f"choices_{k}"]), flush=True)
    prompts = [prompt_for(t, labels8) for t in texts[:n]]
    t_layer = best_of(lambda: eng.generate(prompts, max_tokens=16), repeats)
    t_raw = best_of(lambda: raw_generate(eng, prompts, 16, 16), repeats)
    res["generate_16_tokens"] = {"layer_items_s": n / t_layer, "raw_items_s": n / t_raw,
                                 "layer_vs_raw": t_raw / t_layer}
    print(name, "generate", json.dumps(res["generate_16_tokens"]), flush=True)
    eng.close()
    return res


def bench_cache_hits(tmp: Path, device: str, n_hits: int) -> dict:
    """Fill a cache with real answers of the tiny model, then time a fully cached run."""
    path = tmp / "tiny"
    texts, labels = texts_and_labels()
    labels = labels[:7] + ["none of these"]
    prompts = [prompt_for(f"{texts[i % len(texts)]} #{i}", labels) for i in range(n_hits)]
    eng = load_engine(f"hf:{path}", cache=Cache(tmp / "hits.sqlite"), device=device, batch_size=256)
    t0 = time.perf_counter()
    first = eng.choose(prompts, labels)
    t_fill = time.perf_counter() - t0
    calls = eng.calls
    t_hit = best_of(lambda: eng.choose(prompts, labels), 3)
    again = eng.choose(prompts, labels)
    assert eng.calls == calls and np.array_equal(first, again)
    return {"items": n_hits, "fill_items_s": n_hits / t_fill, "hit_items_s": n_hits / t_hit}


def _f(x: float, suffix: str = "") -> str:
    return "n/a" if x != x else f"{x:.1f}{suffix}"


def render_markdown() -> None:
    runs = {p.stem.split("-", 1)[1]: json.loads(p.read_text()) for p in sorted(RESULTS.glob("engines-*.json"))}
    lines = ["# Engine layer benchmark", "",
             "Random-weight models, so answers are noise and only speed is measured. Every ratio compares two",
             "measurements taken in the same process (best of the repeats). Goals (issue 3): our layer >= 0.9x",
             "the raw call it wraps; `choose` >= 3x faster than generate-then-parse; cache hits >= 10,000 items/s.",
             ""]
    for dev, r in runs.items():
        m = r["machine"]
        lines += [f"## {dev}: {m['device_name']}", "",
                  f"Command: `{r['command']}`  ", f"Date: {r['date']}; {m['cpus']} CPUs "
                  f"({m.get('torch_threads', '?')} torch threads), torch {m['torch']}, "
                  f"transformers {m['transformers']}, python {m['python']}", "",
                  "| model | choices | choose items/s | raw `_choose_batch` items/s | layer/raw | "
                  "generate+parse items/s | choose/generate | plain scoring loop items/s | choose/plain loop |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for s in r["sizes"]:
            for k in ("8", "77"):
                c = s[f"choices_{k}"]
                lines.append(f"| {s['model']} ({s['params_M']}M) | {k} (max {c['max_label_tokens']} tok) | "
                             f"{c['choose_items_s']:.1f} | {c['choose_raw_items_s']:.1f} | {c['layer_vs_raw']:.2f} | "
                             f"{c['generate_parse_items_s']:.1f} | {c['choose_vs_generate']:.1f}x | "
                             f"{_f(c['naive_scoring_items_s'])} | {_f(c['choose_vs_naive'], 'x')} |")
        lines += ["", "| model | generate 16 tokens, layer items/s | raw transformers items/s | layer/raw |",
                  "|---|---|---|---|"]
        for s in r["sizes"]:
            g = s["generate_16_tokens"]
            lines.append(f"| {s['model']} | {g['layer_items_s']:.1f} | {g['raw_items_s']:.1f} | "
                         f"{g['layer_vs_raw']:.2f} |")
        c = r["cache"]
        lines += ["", f"Cache: {c['items']:,} choose() items answered from the SQLite cache at "
                  f"**{c['hit_items_s']:,.0f} items/s** (filling it through the tiny model: "
                  f"{c['fill_items_s']:,.0f} items/s).", ""]
    lines += ["## Reading these figures", "",
              "- *layer/raw* is `LLM.choose` / `LLM.generate` (cache off: batching, usage, dedup) against the call it",
              "  wraps, on the same batches. *raw transformers* generation is tokenize + `model.generate` + decode by hand.",
              "- *generate+parse* decodes exactly as many tokens as the longest label and never needs an end token,",
              "  a generous baseline; *plain scoring loop* scores every prompt+label as a full sequence (no KV reuse).",
              "- `choose` costs one forward pass over the prompt plus the trie of the labels' token prefixes. Where the",
              "  per-pass overhead dominates (GPU, batch 16) one pass beats 5-8 decode steps by 3-5x at real model",
              "  sizes. On a 2-core CPU the 0.5B model is compute-bound and the prompt (which lists all labels) dominates",
              "  both methods, so the trie's extra tokens make `choose` about as fast as generating (1.3x with 8 labels,",
              "  0.8x with 77) — while still giving the full class distribution and never an unparseable answer.",
              "- The device CPU runs were pinned to 2 cores (`taskset -c 0,1`, 2 torch threads) on the GPU machine,",
              "  whose 2 cores were otherwise idle; the development machines are shared and noisier.", ""]
    (RESULTS / "engines.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--sizes", default="tiny,qwen2-0.5b-shape")
    ap.add_argument("--n", type=int, default=64, help="items per measurement (tiny model)")
    ap.add_argument("--n-large", type=int, default=16, help="items per measurement (0.5B shape)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cache-items", type=int, default=20000)
    ap.add_argument("--naive-items", type=int, default=64, help="items timed with the plain scoring loop (tiny)")
    ap.add_argument("--naive-items-large", type=int, default=16, help="same, larger model (0 = skip)")
    ap.add_argument("--tag", default="", help="results file suffix (default: cpu or cuda)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = ap.parse_args()
    import torch
    import transformers

    if args.threads:
        torch.set_num_threads(args.threads)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        sizes = []
        for name in args.sizes.split(","):
            n = args.n if name == "tiny" else args.n_large
            sizes.append(bench_size(name, args.device, n, args.repeats, tmp,
                                    args.naive_items if name == "tiny" else args.naive_items_large))
        if not (tmp / "tiny").exists():
            build(tmp / "tiny", "tiny")
        cache = bench_cache_hits(tmp, args.device, args.cache_items)
        print("cache", json.dumps(cache), flush=True)
    dev_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    out = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix().split("/work/main/")[-1], *sys.argv[1:]]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
        "machine": {"device_name": dev_name, "cpus": len(os.sched_getaffinity(0)), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
                    "transformers": transformers.__version__, "python": platform.python_version()},
        "sizes": sizes, "cache": cache,
    }
    tag = args.tag or ("cuda" if args.device.startswith("cuda") else "cpu")
    (RESULTS / f"engines-{tag}.json").write_text(
        json.dumps(out, indent=2))
    render_markdown()


if __name__ == "__main__":
    main()
