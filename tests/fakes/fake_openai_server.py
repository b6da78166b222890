"""A scriptable fake OpenAI HTTP server on 127.0.0.1 for integration tests, e2e tests and benchmarks.

Serves /v1/images/generations (JSON, optionally SSE), /v1/images/edits (multipart), /v1/files, DELETE
/v1/files/{id} and /v1/responses with real, decodable images. Every request is recorded. Scripted answers are
consumed first-in first-out per route before the default success answer applies.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import io
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from functools import lru_cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

ROUTES = ("generations", "edits", "files", "responses", "files_delete")


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: dict | None = None
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: dict[str, list[tuple[str, str, bytes]]] = field(default_factory=dict)


@dataclass
class Scripted:
    status: int = 200
    json: Any = None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    cut_stream_after: int | None = None
    drip: float = 0.0
    """Seconds between bytes: the headers go at once, then the body (or the event stream) one byte at a time,
    so a per-read timeout never fires while the answer takes forever."""


@lru_cache(maxsize=32)
def encoded_image(width: int, height: int, fmt: str, noisy: bool = False) -> bytes:
    """A real image of the size and format asked for (cached: benchmarks measure the server, not this).

    `noisy` makes a photo-like worst case for compression (a 4K PNG of it is tens of MB)."""
    image = Image.new("RGB", (width, height), (40 + width % 200, 90, 160 + height % 90))
    if noisy:
        noise = Image.effect_noise((width, height), 80).convert("RGB")
        image = Image.blend(image, noise, 0.5)
    buffer = io.BytesIO()
    pil_format = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}.get(fmt, "PNG")
    image.save(buffer, pil_format, **({"compress_level": 1} if pil_format == "PNG" else {"quality": 80}))
    return buffer.getvalue()


@lru_cache(maxsize=32)
def encoded_b64(width: int, height: int, fmt: str, noisy: bool = False) -> str:
    """`encoded_image` as base64 text, cached too: a 4K answer would otherwise cost the fake ~30 ms a call."""
    return base64.b64encode(encoded_image(width, height, fmt, noisy)).decode()


class _Listener(ThreadingHTTPServer):
    # The default backlog of 5 drops or resets connections when dozens of clients connect at once, which made
    # 50 concurrent calls measure the fake instead of the client.
    request_queue_size = 256
    daemon_threads = True


def _size(text: str | None, default: tuple[int, int] = (1024, 1024)) -> tuple[int, int]:
    if not text or text == "auto":
        return default
    w, h = text.lower().split("x")
    return int(w), int(h)


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict, dict]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    fields: dict[str, list[str]] = {}
    files: dict[str, list[tuple[str, str, bytes]]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_param("filename", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if filename is not None:
            files.setdefault(name, []).append((filename, part.get_content_type(), payload))
        else:
            fields.setdefault(name, []).append(payload.decode())
    return fields, files


class FakeOpenAIServer:
    """Start with `.start()` or as a context manager; `base_url` ends in /v1."""

    def __init__(self, *, latency: float = 0.0, noisy_images: bool = False) -> None:
        self.latency = latency
        self.noisy_images = noisy_images
        self.requests: list[RecordedRequest] = []
        self.uploaded_files: dict[str, bytes] = {}
        self.deleted_file_ids: list[str] = []
        self._scripts: dict[str, list[Scripted]] = {route: [] for route in ROUTES}
        self._lock = threading.Lock()
        self._counter = 0
        self._httpd: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> FakeOpenAIServer:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._httpd = _Listener(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._httpd, "start() the server first"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    # -- scripting -------------------------------------------------------------------------------------
    def script(self, route: str, *answers: Scripted) -> None:
        assert route in ROUTES, route
        with self._lock:
            self._scripts[route].extend(answers)

    @staticmethod
    def error(status: int, message: str, *, type: str = "invalid_request_error", code: str | None = None,
              param: str | None = None, headers: dict[str, str] | None = None) -> Scripted:
        body = {"error": {"message": message, "type": type, "param": param, "code": code}}
        return Scripted(status=status, json=body, headers=dict(headers or {}))

    def requests_to(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    # -- internals -------------------------------------------------------------------------------------
    def _next(self, route: str) -> Scripted | None:
        with self._lock:
            return self._scripts[route].pop(0) if self._scripts[route] else None

    def _id(self, prefix: str) -> str:
        with self._lock:
            self._counter += 1
            return f"{prefix}{self._counter}"

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)


def _usage(n: int) -> dict[str, Any]:
    return {"input_tokens": 50, "input_tokens_details": {"text_tokens": 50, "image_tokens": 0},
            "output_tokens": 1000 * n, "total_tokens": 50 + 1000 * n}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_fake: FakeOpenAIServer

    def log_message(self, *args: object) -> None:
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, OSError):
            pass

    # -- plumbing --------------------------------------------------------------------------------------
    _drip = 0.0

    def _read(self) -> RecordedRequest:
        self._drip = 0.0  # per request: a keep-alive connection serves several
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        content_type = self.headers.get("content-type", "")
        request = RecordedRequest(self.command, self.path.split("?")[0],
                                  {k.lower(): v for k, v in self.headers.items()}, body)
        if "json" in content_type and body:
            request.json = json.loads(body)
        elif content_type.startswith("multipart/form-data"):
            request.fields, request.files = _parse_multipart(content_type, body)
        self.server_fake._record(request)
        return request

    def _send(self, status: int, payload: Any = None, body: bytes | None = None,
              headers: dict[str, str] | None = None) -> None:
        data = body if body is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", self.server_fake._id("req_fake_"))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self._write(data)

    def _write(self, data: bytes) -> None:
        """Write `data`, one byte per `drip` seconds when the scripted answer asks for a drip."""
        drip = self._drip
        if not drip:
            self.wfile.write(data)
            return
        self.wfile.flush()
        for index in range(len(data)):
            self.wfile.write(data[index:index + 1])
            self.wfile.flush()
            time.sleep(drip)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _scripted(self, route: str, default: Any) -> None:
        """Answer with the next scripted answer for `route`, or call `default(scripted_or_None)`."""
        answer = self.server_fake._next(route)
        self._drip = answer.drip if answer is not None else 0.0
        if answer is not None:
            if answer.delay:
                time.sleep(answer.delay)
            if answer.drop:
                return self._drop()
            if answer.json is not None or answer.body is not None or answer.status != 200:
                return self._send(answer.status, answer.json if answer.json is not None else {},
                                  answer.body, answer.headers)
        return default(answer)

    # -- routes ----------------------------------------------------------------------------------------
    def do_POST(self) -> None:
        request = self._read()
        path = request.path
        if path == "/v1/images/generations":
            body = request.json or {}
            self._scripted("generations", lambda s: self._images(body, "image_generation", s))
        elif path == "/v1/images/edits":
            body = {k: v[0] for k, v in request.fields.items()}
            first = request.files.get("image[]") or request.files.get("image") or []
            default_size = (1024, 1024)
            if first:
                with Image.open(io.BytesIO(first[0][2])) as opened:
                    default_size = opened.size
            for key in ("n", "partial_images", "output_compression"):
                if key in body:
                    body[key] = int(body[key])
            body["stream"] = body.get("stream") in ("true", "True", True)
            self._scripted("edits", lambda s: self._images(body, "image_edit", s, default_size))
        elif path == "/v1/files":
            self._scripted("files", lambda s: self._file(request))
        elif path == "/v1/responses":
            self._scripted("responses", lambda s: self._response(request.json or {}))
        else:
            self._send(404, {"error": {"message": f"Unknown path {path}", "type": "invalid_request_error",
                                       "param": None, "code": "unknown_url"}})

    def do_DELETE(self) -> None:
        request = self._read()
        file_id = request.path.rsplit("/", 1)[-1]

        def default(_: Scripted | None) -> None:
            fake = self.server_fake
            with fake._lock:
                known = fake.uploaded_files.pop(file_id, None) is not None
                if known:
                    fake.deleted_file_ids.append(file_id)
            if not known:
                return self._send(404, {"error": {"message": "No such file", "type": "invalid_request_error",
                                                  "param": None, "code": None}})
            return self._send(200, {"id": file_id, "object": "file", "deleted": True})

        if request.path.startswith("/v1/files/"):
            self._scripted("files_delete", default)
        else:
            self._send(404, {"error": {"message": "Unknown path", "type": "invalid_request_error"}})

    def _images(self, body: dict, event_prefix: str, scripted: Scripted | None,
                default_size: tuple[int, int] = (1024, 1024)) -> None:
        if self.server_fake.latency:
            time.sleep(self.server_fake.latency)
        n = int(body.get("n") or 1)
        width, height = _size(body.get("size"), default_size)
        fmt = body.get("output_format") or "png"
        b64 = encoded_b64(width, height, fmt, self.server_fake.noisy_images)
        echo = {"size": f"{width}x{height}", "quality": body.get("quality") if body.get("quality") not in (None, "auto")
                else "medium", "background": body.get("background") if body.get("background") not in (None, "auto")
                else "opaque", "output_format": fmt}
        if body.get("stream"):
            return self._stream(body, event_prefix, b64, echo, scripted)
        payload = {"created": int(time.time()), "data": [{"b64_json": b64} for _ in range(n)], **echo,
                   "usage": _usage(n)}
        return self._send(200, payload)

    def _stream(self, body: dict, prefix: str, b64: str, echo: dict, scripted: Scripted | None) -> None:
        partials = int(body.get("partial_images") or 0)
        events = [(f"{prefix}.partial_image", {"type": f"{prefix}.partial_image", "b64_json": b64,
                                               "partial_image_index": i, "created_at": int(time.time()), **echo})
                  for i in range(partials)]
        events.append((f"{prefix}.completed", {"type": f"{prefix}.completed", "b64_json": b64,
                                               "created_at": int(time.time()), "usage": _usage(1), **echo}))
        cut = scripted.cut_stream_after if scripted else None
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("x-request-id", self.server_fake._id("req_fake_"))
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for index, (name, data) in enumerate(events):
            if cut is not None and index >= cut:
                return self._drop()
            self._write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
            self.wfile.flush()
        return None

    def _file(self, request: RecordedRequest) -> None:
        fake = self.server_fake
        name, _, data = (request.files.get("file") or [("upload", "", b"")])[0]
        file_id = fake._id("file-")
        with fake._lock:
            fake.uploaded_files[file_id] = data
        self._send(200, {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                         "filename": name, "purpose": (request.fields.get("purpose") or ["vision"])[0],
                         "status": "processed", "expires_at": None, "status_details": None})

    def _response(self, body: dict) -> None:
        if self.server_fake.latency:
            time.sleep(self.server_fake.latency)
        tool = (body.get("tools") or [{}])[0]
        width, height = _size(tool.get("size"))
        fmt = tool.get("output_format") or "png"
        result = encoded_b64(width, height, fmt, self.server_fake.noisy_images)
        self._send(200, {
            "id": self.server_fake._id("resp_"), "object": "response", "created_at": int(time.time()),
            "model": body.get("model"), "status": "completed", "parallel_tool_calls": True,
            "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools", []),
            "output": [{"type": "image_generation_call", "id": self.server_fake._id("ig_"), "status": "completed",
                        "result": result, "revised_prompt": "revised", "size": f"{width}x{height}",
                        "output_format": fmt, "quality": tool.get("quality"), "background": tool.get("background"),
                        "action": tool.get("action")}],
            "usage": {"input_tokens": 120, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 30,
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 150},
        })
