"""A real Label Studio server: our tasks and config go in through its REST API, annotations are made through the
API (three annotators, one skip), and its JSON, JSON-MIN and CSV exports come back through `llmlabel review import`.

Needs the PyPI ``label-studio`` package in its own virtualenv (heavy pinned dependencies): ``.ci/labelstudio.sh``
sets it up at /opt/ls-venv (or set LLMLABEL_LABEL_STUDIO to the ``label-studio`` executable). Skipped otherwise.
The server runs on 127.0.0.1 with SQLite and its data in a temp folder; it takes ~40 s to start.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
from pathlib import Path

import pytest

from run_fixture import make_run
from clirun import run_cli as _cli

LS = Path(os.environ.get("LLMLABEL_LABEL_STUDIO", "/opt/ls-venv/bin/label-studio"))
pytestmark = [pytest.mark.slow, pytest.mark.labelstudio,
              pytest.mark.skipif(not LS.is_file(), reason=f"label-studio not installed at {LS} (.ci/labelstudio.sh)")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import httpx

    root = tmp_path_factory.mktemp("label-studio")
    port, token = _free_port(), secrets.token_hex(20)
    env = dict(os.environ, LABEL_STUDIO_BASE_DATA_DIR=str(root), LATEST_VERSION_CHECK="false",
               COLLECT_ANALYTICS="false", SENTRY_DSN="", FRONTEND_SENTRY_DSN="")
    log = (root / "server.log").open("w")
    proc = subprocess.Popen([str(LS), "start", "--no-browser", "--internal-host", "127.0.0.1", "--port", str(port),
                             "--host", f"http://127.0.0.1:{port}", "--data-dir", str(root / "data"),
                             "--database", str(root / "ls.sqlite3"), "--username", "owner@example.com",
                             "--password", secrets.token_hex(8), "--user-token", token, "--enable-legacy-api-token"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Token {token}"},
                          timeout=60)
    try:
        deadline = time.time() + 240
        while True:
            if proc.poll() is not None:
                pytest.fail(f"label-studio exited with {proc.returncode}: {(root / 'server.log').read_text()[-2000:]}")
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.time() > deadline:
                pytest.fail("label-studio did not start within 240 s")
            time.sleep(2)
        yield client
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _ok(r, code=(200, 201)):
    assert r.status_code in code, f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:500]}"
    return r.json() if r.content and r.headers.get("content-type", "").startswith("application/json") else r


def test_round_trip_through_a_real_label_studio(server, tmp_path):
    paths = make_run(tmp_path / "run", student=False)
    run = paths["run"]
    gold = {json.loads(s)["id"]: json.loads(s)["label"] for s in paths["gold_all"].read_text().splitlines()}
    tasks_file = tmp_path / "tasks.json"
    assert _cli("review", "export", run / "labeled.parquet", "-o", tasks_file, "--n", 8, "--strategy", "diverse") == 0
    config = (tmp_path / "tasks.config.xml").read_text()
    ours = json.loads(tasks_file.read_text())

    project = _ok(server.post("/api/projects", json={"title": "llmlabel review", "label_config": config}))
    _ok(server.post(f"/api/projects/{project['id']}/import", json=ours))
    listed = _ok(server.get(f"/api/projects/{project['id']}/tasks/", params={"page_size": 100}))
    listed = listed["tasks"] if isinstance(listed, dict) else listed
    assert len(listed) == 8 and {t["data"]["item_id"] for t in listed} == {t["data"]["item_id"] for t in ours}
    users = [_ok(server.post("/api/users/", json={"email": f"a{k}@example.com", "username": f"a{k}"}))["id"]
             for k in (2, 3)]

    def annotate(task_id, label, user=None, cancel=False):
        body = {"result": [] if cancel else [{"from_name": "label", "to_name": "text", "type": "choices",
                                              "value": {"choices": [label]}}], "lead_time": 1.5}
        if user is not None:
            body["completed_by"] = user
        _ok(server.post(f"/api/tasks/{task_id}/annotations/", params={"was_cancelled": 1} if cancel else None,
                        json=body))

    classes = sorted(set(gold.values()))
    by_item = {t["data"]["item_id"]: t["id"] for t in listed}
    items = sorted(by_item)
    wrong = {i: next(c for c in classes if c != gold[i]) for i in items}
    for i in items[:5]:
        annotate(by_item[i], gold[i])
    annotate(by_item[items[0]], wrong[items[0]], users[0])      # 2 of 3 agree: majority, conflict reported
    annotate(by_item[items[0]], gold[items[0]], users[1])
    annotate(by_item[items[1]], wrong[items[1]], users[0])      # 1-1: a tie, no gold
    annotate(by_item[items[5]], "", cancel=True)                # skipped

    got = {}
    for kind, suffix in (("JSON", "json"), ("JSON_MIN", "json"), ("CSV", "csv")):
        r = server.get(f"/api/projects/{project['id']}/export", params={"exportType": kind})
        assert r.status_code == 200, r.text[:300]
        export = tmp_path / f"export-{kind}.{suffix}"
        export.write_bytes(r.content)
        out = tmp_path / f"gold-{kind}.jsonl"
        assert _cli("review", "import", export, "-o", out, "--labeled", run / "labeled.parquet",
                    "--state", tmp_path / f"state-{kind}.json") == 0, kind
        got[kind] = {json.loads(s)["id"]: json.loads(s) for s in out.read_text().splitlines()}
    expect = {i: gold[i] for i in items[:5] if i != items[1]}
    for kind, rows in got.items():
        assert {i: r["label"] for i, r in rows.items()} == expect, kind
    full = got["JSON"]
    assert full[items[0]]["n_annotators"] == 3 and full[items[0]]["conflict"]
    assert not full[items[2]]["conflict"]

    # The gold goes back into the label model: those items are clamped to the human labels.
    labeled2 = tmp_path / "labeled2.parquet"
    assert _cli("aggregate", run / "votes", "--dev", paths["dev"], "--gold", tmp_path / "gold-JSON.jsonl",
                "-o", labeled2) == 0
    from llmlabel.review.artifact import read_labeled

    lab = read_labeled(labeled2)
    human = {i: lab.classes[lab.label_index[r]] for r, i in enumerate(lab.ids) if lab.source[r] == "human"}
    assert human == expect
