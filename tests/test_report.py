"""``llmlabel report``: one self-contained HTML page, checked in a real headless Chromium when it is installed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from run_fixture import make_run
from clirun import run_cli as _cli

CHROMIUM = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars"]
# Every host name resolves to nothing: a page that needed the network would fail to draw.
NO_DNS = "--host-resolver-rules=MAP * ~NOTFOUND"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> dict:
    paths = make_run(tmp_path_factory.mktemp("report-run"))
    run = paths["run"]
    # A cascade curve as `llmlabel predict --cascade-llm` writes it: the real student on the dev texts, deferring
    # to the label model's labels (standing in for the LLM, which this offline test cannot run).
    from llmlabel.distill import load_student
    from llmlabel.distill.cascade import cascade_curve, choose_threshold
    from llmlabel.review.artifact import read_labeled

    lab = read_labeled(run / "labeled.parquet")
    dev = [json.loads(s) for s in paths["dev"].read_text().splitlines()]
    texts = dict(json.loads(s).values() for s in paths["corpus"].read_text().splitlines())
    pos = {i: r for r, i in enumerate(lab.ids)}
    cls = {c: j for j, c in enumerate(lab.classes)}
    gold = np.array([cls[d["label"]] for d in dev])
    student = load_student(run / "model")
    p = student.predict_proba([texts[d["id"]] for d in dev])
    curve = cascade_curve(p.max(1), p.argmax(1) == gold, lab.label_index[[pos[d["id"]] for d in dev]] == gold)
    t, point, _ = choose_threshold(curve, max_deferral=0.3)
    (run / "model" / "dev.cascade.json").write_text(json.dumps({"calibration": {"threshold": t, "point": point,
                                                                                "n_dev": len(dev)}, "curve": curve}))
    (run / "review_rounds.json").write_text(json.dumps({"note": "two simulated review rounds",
                                                        "rounds": _review_rounds(paths, tmp_path_factory)}))
    return paths


def _review_rounds(paths, tmp_path_factory) -> list[dict]:
    """Two real review rounds through the CLI per strategy (export -> simulated annotator -> import -> aggregate
    --gold), scored against the corpus's gold labels."""
    from llmlabel.review.artifact import read_labeled

    gold = {json.loads(s)["id"]: json.loads(s)["label"] for s in paths["gold_all"].read_text().splitlines()}
    rows = []
    for strategy in ("random", "uncertainty"):
        work = tmp_path_factory.mktemp(f"rounds-{strategy}")
        labeled = paths["run"] / "labeled.parquet"
        for r in range(3):
            lab = read_labeled(labeled)
            acc = float(np.mean([c == gold[i] for c, i in zip(lab.label, lab.ids)]))
            rows.append({"strategy": strategy, "n_labels": int((lab.source == "human").sum()), "accuracy": acc})
            if r == 2:
                break
            tasks = work / f"tasks{r}.json"
            assert _cli("review", "export", labeled, "-o", tasks, "--n", 20, "--strategy", strategy,
                        "--state", work / "state.json") == 0
            export = [{"id": k, "data": t["data"], "annotations": [{"id": k, "completed_by": 1, "result": [
                {"from_name": "label", "to_name": "text", "type": "choices",
                 "value": {"choices": [gold[t["data"]["item_id"]]]}}]}]}
                for k, t in enumerate(json.loads(tasks.read_text()), 1)]
            (work / f"export{r}.json").write_text(json.dumps(export))
            assert _cli("review", "import", work / f"export{r}.json", "-o", work / "gold.jsonl", "--labeled", labeled,
                        "--state", work / "state.json") == 0
            labeled = work / f"labeled{r}.parquet"
            assert _cli("aggregate", paths["run"] / "votes", "--dev", paths["dev"], "--gold", work / "gold.jsonl",
                        "-o", labeled) == 0
    return rows


def _report(run: Path, out: Path, *extra) -> str:
    assert _cli("report", run, "-o", out, *extra) == 0
    return out.read_text(encoding="utf-8")


def test_report_has_every_section_with_input_and_no_remote_reference(run_dir, tmp_path):
    html = _report(run_dir["run"], tmp_path / "report.html")
    for sec in ("run", "taxonomy", "lfs", "distribution", "confidence", "dev", "pairs", "review", "student", "rounds"):
        assert f'<section id="{sec}">' in html, sec
    charts = set(re.findall(r'data-chart="chart-([a-z_]+)"', html))
    assert {"shares", "lf_heatmap", "distribution", "confidence", "reliability", "confusion", "cascade",
            "rounds"} <= charts
    # Self-contained: plotly.js inline exactly once, nothing fetched by src/href/url().
    libs = [m for m in re.finditer(r"<script>(.*?)</script>", html, re.S) if "plotly.js v" in m.group(1)[:400]]
    assert len(libs) == 1
    # The library's own source mentions URLs (its logo link, map tiles we never use); our markup and chart scripts
    # must not reference any, and the Chromium test below shows nothing is fetched at run time.
    page = html[:libs[0].start()] + html[libs[0].end():]
    assert len(re.findall(r"<script[^>]*\bsrc=", page)) == 0
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page)
    assert not re.search(r"<link\b|@import|url\(", page)
    # The dev accuracy shown is the labeled file's accuracy on the dev items.
    from llmlabel.review.artifact import read_labeled

    lab = read_labeled(run_dir["run"] / "labeled.parquet")
    gold = {json.loads(s)["id"]: json.loads(s)["label"] for s in run_dir["dev"].read_text().splitlines()}
    acc = np.mean([lab.classes[lab.label_index[r]] == gold[i] for r, i in enumerate(lab.ids) if i in gold])
    assert f"accuracy {acc:.3f}" in html


def test_report_from_single_file_shows_only_its_sections(run_dir, tmp_path):
    html = _report(run_dir["run"] / "labeled.parquet", tmp_path / "r.html")
    assert '<section id="distribution">' in html and '<section id="confidence">' in html
    for sec in ("taxonomy", "lfs", "dev", "student", "rounds"):  # no input, no (empty) section
        assert f'<section id="{sec}">' not in html, sec


def test_report_bad_inputs_are_one_line_errors(run_dir, tmp_path, capsys):
    assert _cli("report", tmp_path / "missing", "-o", tmp_path / "r.html") == 2
    assert "report input not found" in capsys.readouterr().err
    assert _cli("report", run_dir["run"], "-o", tmp_path / "r.pdf") == 2
    bad = tmp_path / "x_rounds.json"
    bad.write_text("[1, 2]")
    assert _cli("report", bad, "-o", tmp_path / "r.html") == 2
    assert "'rounds' list" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def _chromium(url: str, profile: Path, *args, timeout: int = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, HOME=str(profile))
    return subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
                          capture_output=True, text=True, timeout=timeout, env=env)


def _page_requests(netlog: Path) -> list[str]:
    """Non-local URLs the page requested. Chromium's own background calls (time, update and account checks, which
    the flags do not all stop) carry the initiator 'not an origin'; a document's requests carry its origin ('null'
    for a file:// page)."""
    log = json.loads(netlog.read_text())
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    out = []
    for e in log["events"]:
        p = e.get("params") or {}
        if e["type"] == start and "url" in p and p.get("initiator") != "not an origin" and \
                not re.match(r"(?i)(file|data|blob|about|chrome):", p.get("url", "")):
            out.append(p.get("url", "?"))
    return out


def _chart_blocks(dom: str) -> dict[str, str]:
    """The DOM text of each chart container, keyed by its id."""
    starts = [(m.start(), m.group(1)) for m in re.finditer(r'<div class="chart" data-chart="chart-([a-z_]+)"', dom)]
    return {name: dom[s: (starts[i + 1][0] if i + 1 < len(starts) else len(dom))] for i, (s, name) in enumerate(starts)}


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_report_draws_every_chart_in_chromium_without_network(run_dir, tmp_path):
    out = tmp_path / "report.html"
    _report(run_dir["run"], out)
    netlog = tmp_path / "netlog.json"
    r = _chromium(out.as_uri(), tmp_path / "profile", NO_DNS, f"--log-net-log={netlog}",
                  "--virtual-time-budget=30000", "--dump-dom")
    assert r.returncode == 0, r.stderr[-2000:]
    dom = r.stdout
    blocks = _chart_blocks(dom)
    assert len(blocks) >= 8
    marks = {"heatmap": 'class="hm"', "bar": 'class="point"', "line": 'class="js-line"', "slice": 'class="slice'}
    for name, block in blocks.items():
        # After plotly ran, each chart holds its SVG and at least one drawn mark (bar, heatmap image, line or slice).
        assert 'class="main-svg"' in block, f"chart {name} did not draw"
        assert any(m in block for m in marks.values()), f"chart {name} drew no marks"
    assert dom.count('class="hm"') >= 3  # LF agreement, distribution and confusion heat-maps
    # The net log: the page asked for nothing beyond file:// (and DNS was blackholed, yet everything drew).
    assert _page_requests(netlog) == []
    shot = Path(os.environ.get("LLMLABEL_REPORT_SCREENSHOT", tmp_path / "report.png"))
    r = _chromium(out.as_uri(), tmp_path / "profile2", NO_DNS, "--window-size=1400,4200",
                  "--virtual-time-budget=30000", f"--screenshot={shot}")
    assert r.returncode == 0 and shot.is_file()
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 100_000  # a blank page compresses to a few KB


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_network_check_catches_a_page_that_fetches(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text('<html><body><img src="https://example.com/x.png"><script>fetch("http://example.org/a")'
                   '</script></body></html>')
    netlog = tmp_path / "netlog.json"
    r = _chromium(bad.as_uri(), tmp_path / "profile", NO_DNS, f"--log-net-log={netlog}", "--virtual-time-budget=5000",
                  "--dump-dom")
    assert r.returncode == 0
    assert sorted(_page_requests(netlog)) == ["http://example.org/a", "https://example.com/x.png"]
