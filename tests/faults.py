"""The bad-input table behind tests/test_faults.py and eval/reliability.py: every command x every way its input
or output can be wrong.

A case breaks one thing: the command's main input (gone, a folder, empty, a malformed line, non-UTF-8 bytes,
a missing field, whitespace-only texts, a 5 MB text) or its output (a place that cannot be written, a path
under an existing file). A failure must be exit 2 with one ``error:`` line naming the file, and leave an
existing output byte-for-byte as it was; a case the command handles (repaired bytes, empty texts that get a
reason) must finish with exit 0 and no traceback.

Unwritable output: the tests run as root, so a ``chmod`` folder would still be writable. The case writes
under ``/proc/self`` instead: a real folder whose files cannot be created by anyone, root included
(``open(..., O_CREAT)`` fails with ENOENT/EACCES), which is what a read-only mount looks like to a program.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

TAXONOMY = """labels:
  - id: refund
    name: Refund
    description: The customer wants money back.
    keyphrases: [refund, money back]
  - id: lost_card
    name: Lost card
    description: A card was lost or stolen.
    keyphrases: [lost my card, stolen]
  - id: transfer
    name: Transfer
    description: Questions about bank transfers.
    keyphrases: [transfer]
"""
TEXTS = ["I want a refund for order {i}", "please give my money back ({i})", "I lost my card on day {i}",
         "my card was stolen {i} times", "my transfer {i} has not arrived", "how long does transfer {i} take"]
UNWRITABLE_DIR = Path("/proc/self/llmlabel-cannot-write-here")
HUGE_CHARS = 5 * 1024 * 1024

#: Input corruptions, then output ones.
INPUT_CASES = ["missing", "directory", "empty", "malformed", "non_utf8", "missing_field", "whitespace", "huge"]
OUTPUT_CASES = ["unwritable", "under_file"]
CASES = INPUT_CASES + OUTPUT_CASES
#: Cases that must fail (exit 2, one line naming the file) whatever the command.
MUST_FAIL = {"missing", "directory", "empty", "malformed", "missing_field", "unwritable", "under_file"}


def corpus_rows(n: int = 36) -> list[dict]:
    return [{"id": f"r{i}", "text": TEXTS[i % len(TEXTS)].format(i=i)} for i in range(n)]


def _jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def cli(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run ``llmlabel ARGV`` in this process (imports are paid once); returns (exit code, stdout, stderr)."""
    from llmlabel.cli import main

    out, err = io.StringIO(), io.StringIO()
    old, old_env = os.getcwd(), {k: os.environ.get(k) for k in env or {}}
    os.chdir(cwd)
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main([str(a) for a in argv])
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        os.chdir(old)
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return code, out.getvalue(), err.getvalue()


def build_workspace(root: Path) -> Path:
    """Valid inputs for every command, each made by the command before it (so the chain itself is tested)."""
    root.mkdir(parents=True, exist_ok=True)
    _jsonl(root / "data.jsonl", corpus_rows())
    (root / "taxonomy.yaml").write_text(TAXONOMY)
    (root / "lfs.yaml").write_text("lfs:\n  - kind: keyphrases\n")
    (root / "labels.txt").write_text("Refund\nLost card\nTransfer\nCard payment\n")
    _jsonl(root / "gold.jsonl", [{"id": r["id"], "labels": ["Refund"]} for r in corpus_rows()])
    steps = [["label", "data.jsonl", "-t", "taxonomy.yaml", "--lfs", "lfs.yaml", "-o", "votes", "-q"],
             ["aggregate", "votes", "-t", "taxonomy.yaml", "--method", "mv", "-o", "labeled.parquet"],
             ["distill", "labeled.parquet", "-o", "model", "--min-per-class", "1", "--epochs", "1"],
             ["xmc", "data.jsonl", "-l", "labels.txt", "-o", "xmc.jsonl", "--retriever", "bm25", "--no-index-cache"]]
    for argv in steps:
        code, _, err = cli(argv, root)
        assert code == 0, (argv, err)
    (root / "pipeline.yaml").write_text("name: t\ncorpus: data.jsonl\nworkdir: runs/t\nstages:\n"
                                        "  - label: {lfs: lfs.yaml, quiet: true}\n  - aggregate: {method: mv}\n")
    (root / "runs" / "t").mkdir(parents=True)
    shutil.copy(root / "taxonomy.yaml", root / "runs" / "t" / "taxonomy.yaml")  # the pipeline has no taxonomy stage
    return root


# --------------------------------------------------------------------------------------------- the commands

@dataclass(frozen=True)
class Command:
    name: str
    kind: str  # of the main input: corpus, votes, labeled, model, records, pipeline
    argv: tuple[str, ...]  # {in} and {out} are filled in
    out: str | None = None  # file or folder name of the output; None: the command writes nothing
    out_is_dir: bool = False


COMMANDS = [
    Command("taxonomy", "corpus", ("taxonomy", "{in}", "-o", "{out}", "--max-labels", "2", "--embedder",
                                   "wordllama", "-q"), "tax_out.yaml"),
    Command("label", "corpus", ("label", "{in}", "-t", "taxonomy.yaml", "--lfs", "lfs.yaml", "-o", "{out}", "-q"),
            "votes_out", True),
    Command("lf-report", "votes", ("lf-report", "{in}", "-t", "taxonomy.yaml")),
    Command("aggregate", "votes", ("aggregate", "{in}", "-t", "taxonomy.yaml", "--method", "mv", "-o", "{out}"),
            "labeled_out.parquet"),
    Command("distill", "labeled", ("distill", "{in}", "-o", "{out}", "--min-per-class", "1", "--epochs", "1"),
            "model_out", True),
    Command("predict", "corpus", ("predict", "model", "{in}", "-o", "{out}"), "preds_out.jsonl"),
    Command("push", "model", ("push", "{in}", "--repo", "someone/model")),
    Command("xmc", "corpus", ("xmc", "{in}", "-l", "labels.txt", "-o", "{out}", "--retriever", "bm25",
                              "--no-index-cache"), "xmc_out.jsonl"),
    Command("xmc-eval", "records", ("xmc-eval", "{in}", "gold.jsonl")),
    Command("run", "pipeline", ("run", "{in}"), "runs/t", True),
    Command("auto", "corpus", ("auto", "{in}", "-o", "{out}", "--max-labels", "2", "--embedder", "wordllama",
                               "--no-report"), "auto_out", True),
    Command("report", "labeled", ("report", "{in}", "-o", "{out}"), "report.html"),
    Command("review", "labeled", ("review", "export", "{in}", "-o", "{out}", "--n", "5"), "tasks.json"),
]
BY_NAME = {c.name: c for c in COMMANDS}


def applies(cmd: Command, case: str) -> bool:
    if case in OUTPUT_CASES:
        return cmd.out is not None
    if case in ("whitespace", "huge"):  # text cases: only where the input holds texts
        return cmd.kind in ("corpus", "labeled")
    return True


def pairs() -> list[tuple[str, str]]:
    return [(c.name, case) for c in COMMANDS for case in CASES if applies(c, case)]


# --------------------------------------------------------------------------------------------- the inputs

def _bad_input(ws: Path, cmd: Command, case: str) -> Path:
    """The broken main input for ``case`` (a fresh path under ``ws/bad``)."""
    bad = ws / "bad"
    bad.mkdir(exist_ok=True)
    suffix = {"corpus": ".jsonl", "records": ".jsonl", "pipeline": ".yaml", "labeled": ".parquet"}.get(cmd.kind, "")
    p = bad / f"{cmd.name}-{case}{suffix}"
    if case == "missing":
        return p
    if case == "directory":
        p.mkdir()
        return p
    if case == "empty":
        p.write_bytes(b"")
        return p
    rows = corpus_rows()
    k = cmd.kind
    if k in ("corpus", "records") or (k == "labeled" and case in ("whitespace", "huge", "non_utf8", "missing_field")):
        if k == "labeled":
            p = p.with_suffix(".jsonl")
            rows = [{"text": r["text"], "label": ["Refund", "Lost card", "Transfer"][i % 6 // 2]}
                    for i, r in enumerate(rows)]
        if k == "records":
            rows = [json.loads(x) for x in (ws / "xmc.jsonl").read_text().splitlines()]
        lines = [json.dumps(r).encode() for r in rows]
        if case == "malformed":
            lines[3] = lines[3][:-5]
        elif case == "non_utf8":
            lines[2] = lines[2].replace(b'"}', b'\xff\xfe caf\xe9"}', 1).replace(b'"]}', b'"], "x": "\xff"}', 1)
        elif case == "missing_field":
            field = "id" if k == "records" else "text"
            lines[4] = json.dumps({kk: v for kk, v in rows[4].items() if kk != field}).encode()
        elif case == "whitespace":
            lines = [json.dumps({**r, "text": " \t "}).encode() for r in rows]
        elif case == "huge":
            lines[1] = json.dumps({**rows[1], "text": ("refund please " * (HUGE_CHARS // 14 + 1))}).encode()
        p.write_bytes(b"\n".join(lines) + b"\n")
        return p
    if k == "votes":
        shutil.copytree(ws / "votes", p)
        man = p / "_manifest.json"
        if case == "malformed":
            man.write_bytes(man.read_bytes()[:-40])
        elif case == "non_utf8":
            man.write_bytes(man.read_bytes().replace(b'"labels"', b'"lab\xffels"', 1))
        elif case == "missing_field":
            m = json.loads(man.read_text())
            del m["shards"]
            man.write_text(json.dumps(m))
        return p
    if k == "labeled":  # malformed: not a Parquet file at all
        p.write_bytes(b"PAR1 this is not parquet\n")
        return p
    if k == "model":
        shutil.copytree(ws / "model", p)
        cfg = "llmlabel_student.json"
        if case == "malformed":
            (p / cfg).write_bytes((p / cfg).read_bytes()[:-10])
        elif case == "non_utf8":
            (p / cfg).write_bytes(b"\xff\xfe" + (p / cfg).read_bytes())
        elif case == "missing_field":
            for f in p.iterdir():
                if f.suffix in (".safetensors", ".npy", ".npz", ".bin"):
                    f.unlink()
        return p
    if k == "pipeline":
        text = (ws / "pipeline.yaml").read_bytes()
        if case == "malformed":
            text = text.replace(b"stages:\n", b"stages:\n  - label: {lfs: [\n", 1)
        elif case == "non_utf8":
            text = text.replace(b"name: t", b"name: t\xff", 1)
        elif case == "missing_field":
            text = text.replace(b"corpus: data.jsonl\n", b"", 1)
        p.write_bytes(text)
        return p
    raise AssertionError(k)


def _valid_input(ws: Path, cmd: Command) -> str:
    return {"corpus": "data.jsonl", "votes": "votes", "labeled": "labeled.parquet", "model": "model",
            "records": "xmc.jsonl", "pipeline": "pipeline.yaml"}[cmd.kind]


def _snapshot(path: Path) -> dict[str, bytes]:
    if path.is_file():
        return {"": path.read_bytes()}
    if path.is_dir():
        return {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*")) if f.is_file()}
    return {}


@dataclass
class Outcome:
    command: str
    case: str
    code: int
    stderr: str
    problems: list[str]

    @property
    def passed(self) -> bool:
        return not self.problems


def run_case(ws: Path, name: str, case: str) -> Outcome:
    """Run one (command, case) in the workspace ``ws`` (from :func:`build_workspace`) and judge it."""
    cmd = BY_NAME[name]
    inp: str | Path = _valid_input(ws, cmd)
    out = None
    if case in INPUT_CASES:
        inp = _bad_input(ws, cmd, case)
        names = [inp.name]
    elif case == "unwritable":
        out = UNWRITABLE_DIR / (cmd.out or "x")
    else:  # under_file: the output's folder is a regular file
        blocker = ws / "bad" / f"{name}-file"
        blocker.parent.mkdir(exist_ok=True)
        blocker.write_text("a regular file\n")
        out = blocker / (cmd.out or "x")
    if out is None and cmd.out is not None:
        out = ws / "outs" / name / case / cmd.out
        out.parent.mkdir(parents=True, exist_ok=True)
        # an output from an earlier, good run: a failure must leave it as it was
        if cmd.name == "distill":  # a model folder is replaced whole, and only by one: the earlier output is one
            shutil.rmtree(out, ignore_errors=True)
            shutil.copytree(ws / "model", out)
        elif cmd.out_is_dir:
            out.mkdir(parents=True, exist_ok=True)
            (out / "earlier.txt").write_text("earlier output\n")
        else:
            out.write_text("earlier output\n")
    if case in OUTPUT_CASES:
        names = [str(out.parent if case == "under_file" else out), out.name]
    elif name == "run":  # a bad pipeline file: its output is the workdir it names (none to protect)
        out = None
    if name == "run" and case in OUTPUT_CASES:  # the pipeline's output is its workdir, named in the YAML
        spec = ws / "bad" / f"run-{case}.yaml"
        spec.parent.mkdir(exist_ok=True)
        rel = os.path.relpath(out, ws)
        spec.write_text((ws / "pipeline.yaml").read_text().replace("workdir: runs/t", f"workdir: {rel}"))
        if out.parent.is_dir() and not str(out).startswith("/proc"):
            shutil.copytree(ws / "runs" / "t", out, dirs_exist_ok=True)
        inp = spec
    before = _snapshot(out) if out is not None else {}
    argv = [a.replace("{in}", str(inp)).replace("{out}", str(out)) for a in cmd.argv]
    # push: a token and a Hub that is not there, so a bad folder must be refused before any upload
    env = {"HF_TOKEN": "hf_faultsharnesstoken0123456789", "HF_ENDPOINT": "http://127.0.0.1:9"} if name == "push" else None
    code, _stdout, err = cli(argv, ws, env)
    if out is not None and case in OUTPUT_CASES and name == "run":
        names.append(os.path.relpath(out, ws))
    problems: list[str] = []
    lines = [x for x in err.splitlines() if x.strip()]
    if "Traceback" in err or "unexpected" in err:
        problems.append(f"crashed: {err.strip().splitlines()[-1] if err.strip() else ''}")
    if case in MUST_FAIL and code == 0:
        problems.append("exit 0 on input that must be refused")
    if code not in (0, 2):
        problems.append(f"exit {code} (expected 0 or 2)")
    if code != 0:
        if len(lines) != 1 or not lines[0].startswith("error: "):
            problems.append(f"stderr is {len(lines)} lines, not one 'error:' line: {lines[-3:]}")
        elif not any(n in lines[0] for n in names):
            problems.append(f"the error does not name {names[0]}: {lines[0]}")
        if out is not None and _snapshot(out) != before:
            problems.append(f"the existing output {out} changed after a failure")
    return Outcome(name, case, code, err, problems)
