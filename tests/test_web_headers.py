"""Browser-facing headers on every answer the real exporter serves, and the page's CSP."""

from __future__ import annotations

import base64
import hashlib
import re
import socket
from pathlib import Path

import bcrypt
import httpx

from tests.procs import exporter_command, free_port, running


def config_file(directory: Path) -> Path:
    """A config whose provider is never reached unless a test scrapes (then it is down)."""
    path = directory / "config.yml"
    path.write_text(
        "sources: [{name: a, provider: paragon, base_url: 'http://127.0.0.1:1',"
        " auth: {token: t}, syncs: [x]}]\n"
    )
    return path


def raw(port: int, request: bytes) -> str:
    """The head of the answer to bytes no HTTP client would send."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n\r\n")[0].decode("latin-1")


def test_every_answer_says_nosniff_and_no_referrer(workdir: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(exporter_command(config_file(workdir), port), f"{url}/-/healthy"):
        answers = {
            "page": httpx.get(f"{url}/"),
            "metrics": httpx.get(f"{url}/metrics", timeout=30),
            "metrics gzip": httpx.get(
                f"{url}/metrics", headers={"Accept-Encoding": "gzip"}, timeout=30
            ),
            "probe 200": httpx.get(f"{url}/probe", params={"source": "a"}, timeout=30),
            "probe 400": httpx.get(f"{url}/probe"),
            "status.json": httpx.get(f"{url}/status.json"),
            "healthy": httpx.get(f"{url}/-/healthy"),
            "ready": httpx.get(f"{url}/-/ready"),
            "reload 403": httpx.post(f"{url}/-/reload"),
            "not found": httpx.get(f"{url}/nothing-here"),
            "wrong method": httpx.delete(f"{url}/metrics"),
        }
        malformed = raw(port, b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n")
    statuses = {name: answer.status_code for name, answer in answers.items()}
    assert statuses == {
        "page": 200,
        "metrics": 200,
        "metrics gzip": 200,
        "probe 200": 200,
        "probe 400": 400,
        "status.json": 200,
        "healthy": 200,
        "ready": 200,
        "reload 403": 403,
        "not found": 404,
        "wrong method": 405,
    }
    for name, answer in answers.items():
        assert answer.headers.get("X-Content-Type-Options") == "nosniff", name
        assert answer.headers.get("Referrer-Policy") == "no-referrer", name
        assert "default-src 'none'" in answer.headers.get("Content-Security-Policy", ""), name
    assert re.match(r"HTTP/1\.[01] 400 ", malformed), malformed
    assert "x-content-type-options: nosniff" in malformed.lower()


def test_refusals_behind_basic_auth_say_nosniff(workdir: Path) -> None:
    web = workdir / "web.yml"
    hashed = bcrypt.hashpw(b"pw", bcrypt.gensalt(4)).decode()
    web.write_text(f"basic_auth_users:\n  prometheus: '{hashed}'\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = exporter_command(config_file(workdir), port, "--web.config.file", str(web))
    with running(command, f"{url}/-/healthy", auth=("prometheus", "pw")):
        refused = httpx.get(f"{url}/", auth=("prometheus", "wrong"))
    assert refused.status_code == 401
    assert refused.headers.get("X-Content-Type-Options") == "nosniff"
    assert refused.headers.get("Referrer-Policy") == "no-referrer"


def sources(policy: str, directive: str) -> list[str]:
    """The sources one directive of a Content-Security-Policy allows."""
    for part in policy.split(";"):
        name, *values = part.split()
        if name == directive:
            return values
    raise AssertionError(f"no {directive} in {policy!r}")


def digest(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def test_the_page_policy_allows_only_its_own_hashed_script_and_style(workdir: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running(exporter_command(config_file(workdir), port), f"{url}/-/healthy"):
        before = httpx.get(f"{url}/")
        httpx.get(f"{url}/metrics", timeout=30)
        after = httpx.get(f"{url}/")
    policy = before.headers["Content-Security-Policy"]
    # The policy does not change with the data on the page: the inline blocks are constant.
    assert after.headers["Content-Security-Policy"] == policy
    assert sources(policy, "default-src") == ["'none'"]
    assert sources(policy, "connect-src") == ["'self'"]
    assert sources(policy, "frame-ancestors") == ["'none'"]
    assert "unsafe" not in policy and "http" not in policy and "*" not in policy
    for answer in (before, after):
        scripts = re.findall(r"<script>(.*?)</script>", answer.text, re.S)
        styles = re.findall(r"<style>(.*?)</style>", answer.text, re.S)
        assert len(scripts) == 1 and len(styles) == 1
        assert sources(policy, "script-src") == [digest(scripts[0])]
        assert sources(policy, "style-src") == [digest(styles[0])]
        # No inline handlers or style attributes, which a hash cannot allow.
        assert not re.search(r"\son\w+=|\sstyle=", answer.text)
