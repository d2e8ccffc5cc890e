#!/usr/bin/env python3
"""A small HTTP proxy in front of moto, for tests and benchmarks (loopback only).

It forwards every request to the upstream moto server and
  - counts requests per operation (the X-Amz-Target header, e.g. secretsmanager.GetSecretValue),
  - injects faults moto cannot produce: throttling, HTTP 500, a hung connection, a dropped
    connection, a malformed body.

STAND-IN (named as such): moto does not implement SSM ListCommandInvocations (HTTP 500). The
proxy answers that one operation itself, from moto's real ListCommands (the command's instance
ids) and GetCommandInvocation (each invocation), with real pagination (MaxResults, NextToken)
and the plugin output when Details is true. Every other request goes to moto unchanged.

Control endpoints (never forwarded):
  GET  /__proxy/stats            -> {"total": N, "by_operation": {...}}
  POST /__proxy/reset            -> clears counters and queued faults
  POST /__proxy/faults           -> body {"faults": ["throttle", "500", "hang", "drop", "malformed", ...]}
                                    queued in order; each one replaces the answer to one request.

Usage: fault_proxy.py LISTEN_PORT UPSTREAM_PORT   (prints "ready" once listening)
"""
import http.client
import http.server
import json
import socketserver
import sys
import threading
import time

LOCK = threading.Lock()
STATS = {"total": 0, "by_operation": {}}
FAULTS = []
HANG_SECONDS = 30


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def _reply(self, status, body, content_type="application/x-amz-json-1.1"):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _control(self, body):
        global FAULTS
        if self.path == "/__proxy/stats":
            with LOCK:
                return self._reply(200, json.dumps(STATS), "application/json")
        if self.path == "/__proxy/reset":
            with LOCK:
                STATS["total"] = 0
                STATS["by_operation"] = {}
                FAULTS = []
            return self._reply(200, "{}", "application/json")
        if self.path == "/__proxy/faults":
            with LOCK:
                FAULTS.extend(json.loads(body or b"{}").get("faults", []))
            return self._reply(200, "{}", "application/json")
        return self._reply(404, "{}", "application/json")

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.path.startswith("/__proxy/"):
            return self._control(body)
        operation = self.headers.get("X-Amz-Target") or self.path.split("?")[0]
        with LOCK:
            STATS["total"] += 1
            STATS["by_operation"][operation] = STATS["by_operation"].get(operation, 0) + 1
            fault = FAULTS.pop(0) if FAULTS else None
        if fault == "throttle":
            return self._reply(400, json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}))
        if fault == "500":
            return self._reply(500, json.dumps({"__type": "InternalServiceError", "message": "injected"}))
        if fault == "malformed":
            return self._reply(200, b"{\"ARN\": \"arn:aws:secretsmanager:us-east-1:1:secret:x\", \"SecretString\": ")
        if fault == "drop":
            self.close_connection = True
            self.connection.close()
            return None
        if fault == "hang":
            time.sleep(HANG_SECONDS)
            self.close_connection = True
            return None
        if operation == "AmazonSSM.ListCommandInvocations":
            return self._reply(200, json.dumps(list_command_invocations(json.loads(body or b"{}"), dict(self.headers))))
        upstream = http.client.HTTPConnection("127.0.0.1", UPSTREAM_PORT, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length", "server", "date"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()
        return None

    do_GET = _handle
    do_POST = _handle
    do_PUT = _handle
    do_DELETE = _handle


def upstream_ssm(target, payload, headers):
    connection = http.client.HTTPConnection("127.0.0.1", UPSTREAM_PORT, timeout=30)
    forward = {k: v for k, v in headers.items() if k.lower() in ("authorization", "x-amz-date", "host")}
    forward["X-Amz-Target"] = target
    forward["Content-Type"] = "application/x-amz-json-1.1"
    connection.request("POST", "/", body=json.dumps(payload), headers=forward)
    response = connection.getresponse()
    data = json.loads(response.read() or b"{}")
    connection.close()
    return data


def list_command_invocations(request, headers):
    """Stand-in for SSM ListCommandInvocations, built on moto's real command state."""
    command_id = request["CommandId"]
    commands = upstream_ssm("AmazonSSM.ListCommands", {"CommandId": command_id}, headers).get("Commands", [])
    instance_ids = sorted(commands[0].get("InstanceIds", [])) if commands else []
    page_size = int(request.get("MaxResults") or 50)
    start = int(request.get("NextToken") or 0)
    page = instance_ids[start:start + page_size]
    invocations = []
    for instance_id in page:
        got = upstream_ssm("AmazonSSM.GetCommandInvocation", {"CommandId": command_id, "InstanceId": instance_id}, headers)
        invocation = {
            "CommandId": command_id,
            "InstanceId": instance_id,
            "DocumentName": got.get("DocumentName", ""),
            "Status": got.get("Status", "Pending"),
            "StatusDetails": got.get("StatusDetails", ""),
        }
        if request.get("Details"):
            invocation["CommandPlugins"] = [{
                "Name": got.get("PluginName", "aws:runShellScript"),
                "Status": got.get("Status", "Pending"),
                "ResponseCode": got.get("ResponseCode", 0),
                "Output": got.get("StandardOutputContent", ""),
            }]
        invocations.append(invocation)
    answer = {"CommandInvocations": invocations}
    if start + page_size < len(instance_ids):
        answer["NextToken"] = str(start + page_size)
    return answer


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    listen_port, UPSTREAM_PORT = int(sys.argv[1]), int(sys.argv[2])
    server = Server(("127.0.0.1", listen_port), Handler)
    print("ready", flush=True)
    server.serve_forever()
