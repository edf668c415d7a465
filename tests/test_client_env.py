"""What the environment configures for provider requests: proxies and trusted CAs.

A plain http.server on 127.0.0.1 plays the proxy: a proxied request arrives there with the
provider's absolute URL as its target.
"""

from __future__ import annotations

import os
from pathlib import Path

import certifi
import pytest

from exporter.transport.client import env_proxy, tls_context
from tests.procs import Recording, free_port, run_exporter


def once(tmp_path: Path, base_url: str, env: dict[str, str]) -> str:
    config = tmp_path / "config.yml"
    config.write_text(
        f"""
sources:
  - name: p
    provider: paragon
    base_url: {base_url}
    auth: {{token: ptok}}
    syncs: [abc]
"""
    )
    clean = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    result = run_exporter(
        "--config.file", str(config), "--once", env={**clean, **env}, inherit_env=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_requests_go_through_the_proxy_from_the_environment(
    recording: Recording, tmp_path: Path
) -> None:
    body = once(tmp_path, "http://provider.example", {"HTTP_PROXY": recording.url})
    assert recording.paths == [
        "http://provider.example/api/syncs",
        "http://provider.example/api/syncs/abc",
    ]
    assert 'sync_up{provider="paragon",source="p",sync_id="abc"} 1.0' in body


def test_no_proxy_exempts_a_host(recording: Recording, tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    body = once(tmp_path, recording.url, {"HTTP_PROXY": dead, "NO_PROXY": "127.0.0.1"})
    assert recording.paths == ["/api/syncs", "/api/syncs/abc"]
    assert 'sync_up{provider="paragon",source="p",sync_id="abc"} 1.0' in body


def test_env_proxy_picks_by_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if "proxy" in name.lower():
            monkeypatch.delenv(name)
    assert env_proxy("https://api.sequin.io") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://squid:3128")
    assert env_proxy("https://api.sequin.io") == "http://squid:3128"
    assert env_proxy("http://plain.example") is None
    monkeypatch.setenv("ALL_PROXY", "http://all:3128")
    assert env_proxy("http://plain.example") == "http://all:3128"
    monkeypatch.setenv("NO_PROXY", ".sequin.io")
    assert env_proxy("https://api.sequin.io") is None


def test_tls_trusts_certifi_unless_the_environment_names_cas(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    bundled = len(tls_context().get_ca_certs())
    assert bundled > 50
    end = "-----END CERTIFICATE-----\n"
    one = tmp_path / "one.pem"
    one.write_text(Path(certifi.where()).read_text().split(end)[0] + end)
    monkeypatch.setenv("SSL_CERT_FILE", str(one))
    assert len(tls_context().get_ca_certs()) == 1
