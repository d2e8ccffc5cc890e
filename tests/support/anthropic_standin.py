#!/usr/bin/env python3
"""A loopback stand-in for Anthropic's API, for tests only (never a real endpoint).

Behaves like the real service where OpenClaw and openclaw-token-sync look:
  - POST /v1/messages: JSON, or server-sent events when the body says "stream": true
    (message_start, content_block_start, content_block_delta, content_block_stop,
    message_delta, message_stop), with a `request-id` header;
  - POST /v1/messages/count_tokens, GET /v1/models (and /v1/models/<id>);
  - any other POST (e.g. the gateway's `/chat/completions` side call): a small JSON answer,
    streamed in OpenAI's chunk format when asked to stream;
  - a missing credential or a rejected one: 401 with Anthropic's `authentication_error` body.

It records only fingerprints (`sha256:` + the first 12 hex digits of SHA-256, the format
openclaw-token-sync prints) and the kind of header that carried the credential
("bearer" for `Authorization: Bearer`, "x-api-key"), never a credential itself.

Control endpoints (loopback, for the test harness):
  GET  /__standin/requests        -> {"requests": [{method, path, kind, fingerprint, stream,
                                       beta, agent (user-agent), status}, ...]}
  POST /__standin/reject          body {"fingerprints": ["sha256:..."]}: answer those with 401
  POST /__standin/reset           forget recorded requests and rejections, stream at full speed
  POST /__standin/slow            body {"seconds": N}: spread each streamed answer over N seconds
                                  (a long turn in flight), until the next reset

Usage: anthropic_standin.py PORT   (prints "listening PORT" once ready; PORT 0 picks one)
"""

import hashlib
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
REQUESTS = []
REJECTED = set()
SLOW = {"seconds": 0.0}


def fingerprint(secret):
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:12]


def credential(headers):
    """(kind, fingerprint) of the credential a request carries, or (None, None)."""
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        value = auth[7:].strip()
        if value:
            return "bearer", fingerprint(value)
    key = headers.get("x-api-key", "").strip()
    if key:
        return "x-api-key", fingerprint(key)
    return None, None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # never print request lines or headers
        pass

    # ------------------------------------------------------------ helpers

    def body_json(self):
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return {}

    def send_json(self, status, payload, extra=None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("request-id", "req_standin_" + uuid.uuid4().hex[:20])
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def record(self, kind, fp, stream, status):
        with LOCK:
            REQUESTS.append({
                "method": self.command,
                "path": self.path.split("?")[0],
                "kind": kind,
                "fingerprint": fp,
                "stream": bool(stream),
                "beta": self.headers.get("anthropic-beta", ""),
                "agent": self.headers.get("user-agent", ""),
                "status": status,
                "at": time.time(),
            })

    def authorize(self, stream):
        """Checks the credential; answers 401 and returns False when it is missing or rejected."""
        kind, fp = credential(self.headers)
        with LOCK:
            rejected = fp in REJECTED
        if kind is None or rejected:
            self.record(kind, fp, stream, 401)
            message = "invalid x-api-key" if kind != "bearer" else "Invalid bearer token"
            self.send_json(401, {
                "type": "error",
                "error": {"type": "authentication_error", "message": message},
                "request_id": "req_standin_" + uuid.uuid4().hex[:20],
            })
            return False
        self.record(kind, fp, stream, 200)
        return True

    def sse(self, events):
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("request-id", "req_standin_" + uuid.uuid4().hex[:20])
        self.send_header("connection", "close")
        self.end_headers()
        with LOCK:
            pause = SLOW["seconds"] / max(len(events), 1)
        for name, payload in events:
            if pause:
                time.sleep(pause)
            chunk = ""
            if name:
                chunk += "event: " + name + "\n"
            chunk += "data: " + (payload if isinstance(payload, str) else json.dumps(payload)) + "\n\n"
            self.wfile.write(chunk.encode())
            self.wfile.flush()
        self.close_connection = True

    # ------------------------------------------------------------ routes

    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/__standin/requests":
            with LOCK:
                self.send_json(200, {"requests": list(REQUESTS)})
            return
        if path.startswith("/v1/models"):
            if not self.authorize(False):
                return
            model = {"type": "model", "id": "claude-sonnet-4-5", "display_name": "Claude Sonnet 4.5",
                     "created_at": "2025-09-29T00:00:00Z"}
            if path == "/v1/models":
                self.send_json(200, {"data": [model], "has_more": False,
                                     "first_id": model["id"], "last_id": model["id"]})
            else:
                self.send_json(200, dict(model, id=path.rsplit("/", 1)[1]))
            return
        self.send_json(404, {"type": "error", "error": {"type": "not_found_error", "message": "Not found"}})

    def do_POST(self):
        path = self.path.split("?")[0]
        body = self.body_json()
        if path == "/__standin/reject":
            with LOCK:
                REJECTED.update(body.get("fingerprints", []))
            self.send_json(200, {"ok": True})
            return
        if path == "/__standin/reset":
            with LOCK:
                REQUESTS.clear()
                REJECTED.clear()
                SLOW["seconds"] = 0.0
            self.send_json(200, {"ok": True})
            return
        if path == "/__standin/slow":
            with LOCK:
                SLOW["seconds"] = float(body.get("seconds", 0))
            self.send_json(200, {"ok": True})
            return
        stream = bool(body.get("stream"))
        if not self.authorize(stream):
            return
        if path == "/v1/messages":
            self.messages(body, stream)
        elif path == "/v1/messages/count_tokens":
            self.send_json(200, {"input_tokens": 12})
        else:
            self.other(body, stream)

    def messages(self, body, stream):
        model = body.get("model") or "claude-sonnet-4-5"
        msg_id = "msg_standin_" + uuid.uuid4().hex[:20]
        text = "Hello from the Anthropic stand-in."
        usage = {"input_tokens": 12, "output_tokens": 8}
        if not stream:
            self.send_json(200, {
                "id": msg_id, "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn", "stop_sequence": None, "usage": usage,
            })
            return
        self.sse([
            ("message_start", {"type": "message_start", "message": {
                "id": msg_id, "type": "message", "role": "assistant", "model": model,
                "content": [], "stop_reason": None, "stop_sequence": None,
                "usage": {"input_tokens": 12, "output_tokens": 1}}}),
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
            ("ping", {"type": "ping"}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": text}}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta",
                               "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                               "usage": {"output_tokens": 8}}),
            ("message_stop", {"type": "message_stop"}),
        ])

    def other(self, body, stream):
        """OpenAI-shaped answer for side calls such as /chat/completions."""
        model = body.get("model") or "claude-sonnet-4-5"
        cid = "chatcmpl-standin-" + uuid.uuid4().hex[:12]
        if stream:
            self.sse([
                (None, {"id": cid, "object": "chat.completion.chunk", "model": model, "choices": [
                    {"index": 0, "delta": {"role": "assistant", "content": "ok"}, "finish_reason": None}]}),
                (None, {"id": cid, "object": "chat.completion.chunk", "model": model, "choices": [
                    {"index": 0, "delta": {}, "finish_reason": "stop"}]}),
                (None, "[DONE]"),
            ])
            return
        self.send_json(200, {
            "id": cid, "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
        })


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("listening", server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
