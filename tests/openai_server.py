"""A small, real OpenAI-compatible HTTP server for tests: a tiny hf model behind stdlib ``http.server``.

    with OpenAIServer(model_dir) as srv:            # srv.url == "http://127.0.0.1:<free port>/v1"
        srv.inject("status", n=2, status=500)       # the next 2 requests fail with HTTP 500
        srv.inject("status", status=429, retry_after=0.3)
        srv.inject("stall", n=3, seconds=5)         # the next 3 requests hang before answering
        srv.inject("malformed", body=b"<html>")     # a 200 reply that is not JSON
        srv.inject("reply", text="banana")           # a well-formed chat reply saying this, no log-probs
        srv.requests, srv.headers, srv.bodies, srv.replies, srv.max_in_flight

Switches make it behave like other servers: ``echo=False`` (llama.cpp server: no prompt log-probs),
``logprobs=False``, ``structured=False`` (ignores vLLM's ``structured_outputs``), ``strict=True``
(rejects unknown fields, like hosted APIs), ``schema=False`` (rejects ``response_format``),
``lists=False`` (one prompt per ``/completions`` request), ``grammar=True`` (honours a GBNF ``grammar`` of
quoted alternatives, like llama.cpp's server), ``json_object=True`` (llama-cpp-python: ``response_format``
``json_schema`` is a 500 validation error, ``{"type": "json_object", "schema": ...}`` is honoured), ``max_logprobs`` (more is a 400, as on vLLM;
TGI allows 5), ``delay`` (seconds every request takes), ``shift_echo=True`` (llama-cpp-python 0.3.36:
each echoed prompt token gets its log-prob from the distribution *after* it).
"""

from __future__ import annotations

import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch

from llmlabel.llm.base import SamplingParams
from llmlabel.llm.hf_local import HFEngine

KNOWN_FIELDS = {"model", "messages", "prompt", "max_tokens", "temperature", "top_p", "seed", "stop", "n",
                "logprobs", "top_logprobs", "echo", "response_format", "stream", "user"}
GRAMMAR_ALT = re.compile(r'"((?:[^"\\]|\\.)*)"')
SWITCHES = dict(echo=True, logprobs=True, structured=True, strict=False, schema=True, lists=True, delay=0.0,
                max_logprobs=20, shift_echo=False, grammar=False, json_object=False)


class OpenAIServer:
    def __init__(self, model_dir, name: str = "tiny") -> None:
        self.engine = HFEngine(str(model_dir), cache=False, chat=False)  # str prompts raw, messages templated
        self.tok = self.engine.tokenizer
        self.vocab = [self.tok.decode([i]) for i in range(len(self.tok))]
        self.name = name
        self._lock = threading.Lock()  # counters and the fault queue
        self._model_lock = threading.Lock()  # one forward pass at a time: deterministic, thread-safe
        self._wake = threading.Event()  # set to end the stalls in progress
        self.in_flight = 0
        self.reset()

    def reset(self) -> None:
        """Back to a plain, fault-free server with zeroed counters."""
        with self._lock:
            self._wake.set()
            self._wake = threading.Event()
            self.__dict__.update(SWITCHES)
            self.faults: list[tuple[str, dict]] = []
            self.requests, self.max_in_flight = 0, self.in_flight
            self.headers: list[dict] = []
            self.bodies: list[dict] = []
            self.replies: list[tuple[dict, dict]] = []  # (request, reply) in arrival order

    def inject(self, kind: str, n: int = 1, **arg) -> None:
        """Make the next ``n`` requests misbehave: kind is 'status', 'stall', 'malformed' or 'reply'."""
        assert kind in ("status", "stall", "malformed", "reply")
        with self._lock:
            self.faults += [(kind, arg)] * n

    # ---- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> "OpenAIServer":
        app = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                app._serve(self, b"")

            def do_POST(self) -> None:
                app._serve(self, self.rfile.read(int(self.headers.get("Content-Length") or 0)))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False  # stalled handlers must not hold up shutdown
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._wake.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        deadline = time.monotonic() + 5
        while self.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)  # no handler may be inside torch when the interpreter exits

    # ---- HTTP -----------------------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler, raw: bytes) -> None:
        with self._lock:
            self.requests += 1
            self.headers.append(dict(h.headers))
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            fault = self.faults.pop(0) if self.faults else None
        try:
            body = json.loads(raw) if raw else {}
            self.bodies.append(body)
            if fault and fault[0] == "stall":
                if self._wake.wait(fault[1].get("seconds", 1.0)):
                    return  # reset or shut down meanwhile: this request belongs to a finished test
            elif fault and fault[0] == "status":
                a = fault[1]
                extra = {"Retry-After": str(a["retry_after"])} if "retry_after" in a else {}
                return self._send(h, a["status"], _err(a.get("message", f"injected {a['status']}")), extra)
            elif fault and fault[0] == "malformed":
                return self._send(h, 200, fault[1].get("body", b'{"oops": '))
            elif fault:
                msg = {"role": "assistant", "content": fault[1]["text"]}
                return self._send(h, 200, _reply("chat.completion", [{"index": 0, "message": msg, "logprobs": None,
                                                                      "finish_reason": "stop"}], 1, 1, self.name))
            time.sleep(self.delay)
            code, reply = self._route(h.path, body)
            self.replies.append((body, reply))
            self._send(h, code, reply)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a stall test)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _send(self, h, code: int, reply, headers: dict | None = None) -> None:
        data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)

    def _route(self, path: str, body: dict) -> tuple[int, dict]:
        if path == "/v1/models":
            return 200, {"object": "list", "data": [{"id": self.name, "object": "model", "owned_by": "test"}]}
        if path not in ("/v1/chat/completions", "/v1/completions"):
            return 404, _err(f"no route {path}")
        if body.get("model") != self.name:
            return 404, _err(f"model {body.get('model')!r} not found")
        if self.strict and set(body) - KNOWN_FIELDS:
            return 400, _err(f"unrecognized request arguments: {sorted(set(body) - KNOWN_FIELDS)}")
        n_top = body.get("top_logprobs") if "messages" in body else body.get("logprobs")
        if isinstance(n_top, int) and not isinstance(n_top, bool) and n_top > self.max_logprobs:
            return 400, _err(f"top_logprobs must be <= {self.max_logprobs}, got {n_top}")
        if isinstance(body.get("prompt"), list) and not self.lists:
            return 400, _err("prompt must be a string")
        if body.get("response_format") and not self.schema:
            return 400, _err("response_format is not supported")
        rf_type = (body.get("response_format") or {}).get("type")
        if self.json_object and rf_type not in (None, "text", "json_object"):
            return 500, _err("1 validation error: {'type': 'literal_error', 'loc': ('body', 'response_format', "
                             "'type'), 'msg': \"Input should be 'text' or 'json_object'\"}")
        with self._model_lock, torch.inference_mode():
            return 200, (self._chat(body) if path.endswith("chat/completions") else self._complete(body))

    # ---- the model ------------------------------------------------------------------------------
    def _logprobs(self, ids: list[int]) -> torch.Tensor:
        return torch.log_softmax(self.engine.hf_model(input_ids=torch.tensor([ids])).logits[0].float(), -1)

    def _top(self, lp: torch.Tensor, n: int) -> list[tuple[str, float]]:
        if n <= 0:
            return []
        v, i = lp.topk(n)
        return [(self.vocab[t], float(x)) for x, t in zip(v.tolist(), i.tolist())]

    def _decode(self, ids, max_tokens, temperature, seed, choices, top):
        """Greedy or seeded sampling; ``choices`` constrains the text to one of them, like vLLM's choice."""
        gen = torch.Generator().manual_seed(int(seed))
        out, steps, finish = [], [], "length"
        eos = self.tok.eos_token_id
        for _ in range(max_tokens):
            lp = self._logprobs(ids + out)[-1]
            logits = lp
            if choices:
                text = self.tok.decode(out)
                ok = [t for t, s in enumerate(self.vocab) if s and any(c.startswith(text + s) for c in choices)]
                ok += [eos] if text in choices else []
                logits = torch.full_like(lp, float("-inf"))
                logits[ok] = lp[ok]  # raw log-probs are reported, as vLLM does
            if temperature > 0:
                t = int(torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=gen))
            else:
                t = int(logits.argmax())
            if t == eos:
                finish = "stop"
                break
            out.append(t)
            steps.append((t, float(lp[t]), self._top(lp, top)))
        return out, steps, finish

    def _generate(self, prompt, ids, body, top):
        rf = body.get("response_format") or {}
        schema = (rf.get("json_schema") or {}).get("schema") if rf.get("type") == "json_schema" else None
        if rf.get("type") == "json_object" and self.json_object:
            schema = rf.get("schema")
        so = body.get("structured_outputs") if self.structured else None
        choices = so.get("choice") if isinstance(so, dict) else None
        if self.grammar and isinstance(body.get("grammar"), str):  # root ::= "a" | "b" | ...
            choices = [json.loads(f'"{m}"') for m in GRAMMAR_ALT.findall(body["grammar"])]
        max_tokens, temp = int(body.get("max_tokens") or 16), float(body.get("temperature") or 0.0)
        if schema is not None:  # constrained by xgrammar inside the hf engine; no log-probs on this path
            params = SamplingParams(max_tokens, temp, 1.0, int(body.get("seed") or 0))
            c = self.engine._generate_batch([prompt], params, schema)[0]
            return c.text, [], c.completion_tokens, c.finish_reason
        out, steps, finish = self._decode(ids, max_tokens, temp, body.get("seed") or 0, choices, top)
        return self.tok.decode(out, skip_special_tokens=True), steps, len(out), finish

    def _chat(self, body: dict) -> dict:
        msgs = body["messages"]
        ids = self.engine.encode_prompts([msgs])[0]
        want = bool(body.get("logprobs")) and self.logprobs
        text, steps, n, finish = self._generate(msgs, ids, body, int(body.get("top_logprobs") or 0) if want else 0)
        content = [{"token": self.vocab[t], "logprob": lp, "bytes": list(self.vocab[t].encode()),
                    "top_logprobs": [{"token": s, "logprob": x} for s, x in alts]} for t, lp, alts in steps]
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish,
                  "logprobs": {"content": content} if want and steps else None}
        return _reply("chat.completion", [choice], len(ids), n, self.name)

    def _complete(self, body: dict) -> dict:
        prompts = body["prompt"]
        prompts = prompts if isinstance(prompts, list) else [prompts]
        n_top = int(body.get("logprobs") or 0) if self.logprobs and body.get("logprobs") is not None else None
        echo = bool(body.get("echo")) and self.echo
        choices, p_tok, c_tok = [], 0, 0
        for i, prompt in enumerate(prompts):
            ids = self.engine.encode_prompts([prompt])[0]
            text, steps, n, finish = self._generate(prompt, ids, body, n_top or 0)
            toks = [(t, lp, dict(alts)) for t, lp, alts in steps]
            if echo:
                lp = self._logprobs(ids)  # row j-1 predicts token j; the first token has no log-prob
                r = 0 if self.shift_echo else 1  # llama-cpp-python reads row j for token j
                head = [(ids[0], None, {})] + [(t, float(lp[j - r, t]), dict(self._top(lp[j - r], n_top or 0)))
                                                for j, t in enumerate(ids) if j > 0]
                toks, text = head + toks, prompt + text
            logprobs = None
            if n_top is not None:
                strs = [self.vocab[t] for t, _, _ in toks]
                logprobs = {"tokens": strs, "token_logprobs": [x for _, x, _ in toks],
                            "top_logprobs": [a for _, _, a in toks],
                            "text_offset": [sum(map(len, strs[:j])) for j in range(len(strs))]}
            choices.append({"index": i, "text": text, "logprobs": logprobs, "finish_reason": finish})
            p_tok, c_tok = p_tok + len(ids), c_tok + n
        return _reply("text_completion", choices, p_tok, c_tok, self.name)


def _err(message: str) -> dict:
    return {"error": {"message": message, "type": "invalid_request_error"}}


def _reply(kind: str, choices: list, prompt_tokens: int, completion_tokens: int, model: str) -> dict:
    return {"id": f"{kind}-test", "object": kind, "created": int(time.time()), "model": model, "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}
