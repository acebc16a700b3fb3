"""gpudask.local.cluster.kube against a real loopback HTTP server: 429 retried as client-go does, the
server's Warning text read back as the server wrote it. No control plane needed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from gpudask.local.cluster.kube import ApiError, Kube
from gpudask.local.pki import Authority


@pytest.fixture
def server() -> Iterator[tuple[ThreadingHTTPServer, list[int]]]:
    """Answers 429 (Retry-After: 0) `state[0]` times, then 200 with a Pod Security Warning."""
    state = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if state[0] > 0:
                state[0] -= 1
                body = json.dumps({"reason": "TooManyRequests", "message": "storage is (re)initializing"})
                self.send_response(429)
                self.send_header("Retry-After", "0")
            else:
                body = json.dumps({"kind": "Status"})
                self.send_response(200)
                self.send_header("Warning", '299 - "would violate PodSecurity \\"restricted:latest\\": privileged"')
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: object) -> None:
            return

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # shutdown() waits up to one poll interval (0.5 s by default) for serve_forever to notice.
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield httpd, state
    finally:
        httpd.shutdown()
        httpd.server_close()


def _client(tmp_path: Path, port: int) -> Kube:
    ca = Authority(tmp_path)  # the client loads a CA; plain http:// never uses it
    config = {
        "clusters": [{"cluster": {"server": f"http://127.0.0.1:{port}", "certificate-authority": str(ca.cert)}}],
        "users": [{"user": {"token": "t"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return Kube(path)


def test_a_429_is_retried_until_the_server_answers(
    server: tuple[ThreadingHTTPServer, list[int]], tmp_path: Path
) -> None:
    httpd, state = server
    state[0] = 3
    response = _client(tmp_path, httpd.server_address[1]).request("GET", "/api/v1")
    assert response.status == 200 and state[0] == 0


def test_a_429_that_never_ends_is_reported_with_the_servers_words(
    server: tuple[ThreadingHTTPServer, list[int]], tmp_path: Path
) -> None:
    httpd, state = server
    state[0] = 1000
    with pytest.raises(ApiError) as refused:
        _client(tmp_path, httpd.server_address[1]).request("GET", "/api/v1")
    assert refused.value.status == 429 and refused.value.message == "storage is (re)initializing"
    assert 1000 - state[0] == 11  # the first try and client-go's 10 retries


def test_warning_text_is_the_servers_without_its_quoting(
    server: tuple[ThreadingHTTPServer, list[int]], tmp_path: Path
) -> None:
    httpd, _ = server
    response = _client(tmp_path, httpd.server_address[1]).request("GET", "/api/v1")
    assert response.warnings == ['would violate PodSecurity "restricted:latest": privileged']
