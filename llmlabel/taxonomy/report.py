"""Writing a taxonomy run: taxonomy.yaml, taxonomy.assignments.jsonl, taxonomy.md, and the terminal summary table."""

from __future__ import annotations

from pathlib import Path

from ..artifacts.taxonomy import OTHER, assignments_path, save_taxonomy, write_assignments


def default_paths(out: str | Path) -> dict[str, Path]:
    """The files of a taxonomy run, named after the output so that two runs into one folder never overwrite
    each other's: ``x.yaml`` -> ``x.assignments.jsonl`` (+ its ``.meta.json``) and ``x.md``."""
    out = Path(out)
    return {"taxonomy": out, "assignments": assignments_path(out), "markdown": out.with_suffix(".md")}


def write_outputs(result, out: str | Path, *, assignments: str | Path | None = None,
                  markdown: str | Path | None = None, meta: dict | None = None) -> dict[str, Path]:
    """Write the three files (atomically); returns their paths."""
    from ..io_meta import make_meta

    paths = default_paths(out)
    if assignments is not None:
        paths["assignments"] = Path(assignments)
    if markdown is not None:
        paths["markdown"] = Path(markdown)
    for p in paths.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    save_taxonomy(result.taxonomy, paths["taxonomy"])
    m = meta if meta is not None else make_meta(engine=result.taxonomy.made_with.get("engine"),
                                               taxonomy=str(paths["taxonomy"]), stats=result.stats)
    write_assignments(paths["assignments"], result.rows(), m)
    from ..io_write import atomic_write

    with atomic_write(paths["markdown"]) as f:
        f.write(render_markdown(result))
    return paths


def _md(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def render_markdown(result) -> str:
    tax = result.taxonomy
    counts = result.counts()
    n = max(len(result.assignments), 1)
    made = tax.made_with
    lines = ["# Taxonomy", ""]
    if tax.instruction:
        lines += [f"Instruction: {tax.instruction}", ""]
    lines += [f"{len(tax.leaves())} labels over {len(result.assignments):,} items "
              f"({counts.get(OTHER, 0) / n:.1%} left `other`); embedder `{made.get('embedder')}`, "
              f"engine `{made.get('engine') or 'none'}`, seed {made.get('seed')}.", "",
              "| id | name | share | key phrases | example |", "|---|---|---|---|---|"]
    for lab in tax.labels:
        share = counts.get(lab.id, 0) / n if lab.id in counts else (lab.share or 0)
        ex = lab.examples[0].text if lab.examples else ""
        name = ("↳ " if lab.parent else "") + lab.name + (" *(proposed)*" if lab.proposed else "")
        lines.append(f"| `{lab.id}` | {_md(name)} | {share:.1%} | {_md(', '.join(lab.keyphrases[:5]))} | {_md(ex)} |")
    lines += ["", "## Labels", ""]
    for lab in tax.labels:
        lines += [f"### {_md(lab.name)} (`{lab.id}`)" + (f", under `{lab.parent}`" if lab.parent else ""), "",
                  lab.description, ""]
        lines += [f"- {_md(e.text)} (`{e.id}`)" for e in lab.examples]
        lines.append("")
    return "\n".join(lines)


def summary_table(result, max_rows: int = 100, width: int | None = None):
    """A rich Table: id, name, items, share, key phrases, an example; one line per label, sized to ``width``
    (default: the terminal's)."""
    from rich.console import Console
    from rich.table import Table

    tax = result.taxonomy
    counts = result.counts()
    n = max(len(result.assignments), 1)
    t = Table(title=f"{len(tax.leaves())} labels, {len(result.assignments):,} items, "
                    f"{counts.get(OTHER, 0) / n:.1%} other")
    # Widths are set here: rich's own shrinking squeezes the short number columns to nothing when the text
    # columns are long. Long cells are cut with an ellipsis instead of wrapping into paragraphs.
    free = max((width or Console().width) - 19 - 7 - 6, 24)  # 19: borders and padding of 6 columns
    # Ids are what people copy into lfs.yaml and --dev files: never cut them (a pipe or file gets 80 columns),
    # the other text columns share what is left.
    id_w = max([2] + [len(lab.id) for lab in tax.labels[:max_rows]])
    free = max(free - id_w, 24)
    share = {"name": 0.34, "key phrases": 0.30, "example": 0.36}
    w = {c: max(6, int(free * f)) for c, f in share.items()}
    cut = {"no_wrap": True, "overflow": "ellipsis"}
    t.add_column("id", style="cyan", min_width=id_w, no_wrap=True, overflow="fold")
    t.add_column("name", width=w["name"], **cut)
    t.add_column("items", justify="right", width=7, no_wrap=True)
    t.add_column("share", justify="right", width=6, no_wrap=True)
    t.add_column("key phrases", width=w["key phrases"], **cut)
    t.add_column("example", width=w["example"], **cut)
    from rich.markup import escape

    for lab in tax.labels[:max_rows]:
        c = counts.get(lab.id, 0)
        name = ("  " if lab.parent else "") + lab.name + (" (proposed)" if lab.proposed else "")
        t.add_row(escape(lab.id), escape(name), f"{c:,}", f"{c / n:.1%}", escape(", ".join(lab.keyphrases[:4])),
                  escape(lab.examples[0].text[:80] if lab.examples else ""))
    if OTHER in counts:
        t.add_row(OTHER, "(fits no label)", f"{counts[OTHER]:,}", f"{counts[OTHER] / n:.1%}", "", "")
    return t
