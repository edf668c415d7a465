"""--web.config.file: TLS, mutual TLS and basic auth, over real HTTPS on 127.0.0.1."""

from __future__ import annotations

import ssl
import subprocess
from pathlib import Path

import bcrypt
import httpx
import pytest

from tests.conftest import Sim
from tests.procs import exporter_command, free_port, run_exporter, running
from tests.tools import require


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run([require("openssl"), *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all made here."""
    d = tmp_path_factory.mktemp("pki")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.crt", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name in ("server", "client"):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", f"{name}.crt",
                cwd=d)  # fmt: skip
    return d


def config_file(sim: Sim, directory: Path) -> Path:
    sim.create("sequin", "tls-1", {"status": "active", "initial_backfill_completed_at": None})
    path = directory / "config.yml"
    path.write_text(
        f"sources: [{{name: s, provider: sequin, base_url: '{sim.base}/sequin',"
        " auth: {token: sim-sequin-key}, syncs: [tls-1], webhook: {secret: hook-token-1}}]"
    )
    return path


def test_tls_and_basic_auth(sim: Sim, pki: Path, workdir: Path) -> None:
    hashed = bcrypt.hashpw(b"s3cret-pass", bcrypt.gensalt(4)).decode().replace("$2b$", "$2y$")
    web = workdir / "web.yml"
    web.write_text(
        f"tls_server_config: {{cert_file: {pki}/server.crt, key_file: {pki}/server.key}}\n"
        f"basic_auth_users: {{prometheus: '{hashed}'}}\n"
    )
    port = free_port()
    command = exporter_command(config_file(sim, workdir), port, "--web.config.file", str(web))
    url = f"https://127.0.0.1:{port}"
    log = workdir / "exporter.log"
    trust = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    auth = ("prometheus", "s3cret-pass")
    with running(command, f"{url}/-/healthy", log=log, verify=trust, auth=auth):
        client = httpx.Client(verify=trust)
        assert client.get(f"{url}/metrics").status_code == 401
        assert client.get(f"{url}/metrics").headers["WWW-Authenticate"].startswith("Basic ")
        assert client.get(f"{url}/metrics", auth=("prometheus", "wrong")).status_code == 401
        assert client.get(f"{url}/metrics", auth=("nobody", "s3cret-pass")).status_code == 401
        for _ in range(3):
            ok = client.get(f"{url}/metrics", auth=("prometheus", "s3cret-pass"))
            assert ok.status_code == 200 and 'sync_up{provider="sequin"' in ok.text
        # Longer than bcrypt's 72 bytes: refused, not an internal error.
        assert client.get(f"{url}/metrics", auth=("prometheus", "p" * 100)).status_code == 401
        assert client.get(f"{url}/", headers={"Authorization": "Basic !!!"}).status_code == 401
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        # Webhooks come over the same TLS, without basic auth: their token stands in for it.
        hook = client.post(f"{url}/webhooks/s?token=hook-token-1", json={"event": "x"})
        assert hook.status_code == 202, hook.text
        refused = client.post(f"{url}/webhooks/s", json={"event": "x"})
        assert refused.status_code == 401 and "WWW-Authenticate" not in refused.headers
        with pytest.raises(httpx.HTTPError):
            httpx.post(f"http://127.0.0.1:{port}/webhooks/s?token=hook-token-1", timeout=5)
    assert "s3cret-pass" not in log.read_text() and hashed not in log.read_text()
    assert "hook-token-1" not in log.read_text()


def test_mutual_tls(sim: Sim, pki: Path, workdir: Path) -> None:
    web = workdir / "web.yml"
    web.write_text(
        "tls_server_config:\n"
        f"  cert_file: {pki}/server.crt\n"
        f"  key_file: {pki}/server.key\n"
        "  client_auth_type: RequireAndVerifyClientCert\n"
        f"  client_ca_file: {pki}/ca.crt\n"
        "  min_version: TLS13\n"
    )
    port = free_port()
    command = exporter_command(config_file(sim, workdir), port, "--web.config.file", str(web))
    url = f"https://127.0.0.1:{port}"
    trust = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "client.crt"), str(pki / "client.key"))
    with running(command, f"{url}/-/healthy", verify=context):
        assert httpx.get(f"{url}/metrics", verify=context).status_code == 200
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{url}/metrics", verify=trust, timeout=5)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "basic_auth_users: {u: plain}",
            "basic_auth_users: password of user 'u' is not a bcrypt hash",
        ),
        (
            "basic_auth_users: {u: $2y$10$notahash}",
            "basic_auth_users: password of user 'u' is not a bcrypt hash",
        ),
        (
            "tls_server_config: {cert_file: /nonexistent.crt, key_file: /nonexistent.key}",
            "tls_server_config: cannot load cert_file/key_file: No such file or directory",
        ),
        (
            "tls_server_config: {cert_file: a, key_file: b,"
            " client_auth_type: RequireAndVerifyClientCert}",
            "tls_server_config: client_auth_type RequireAndVerifyClientCert needs client_ca_file",
        ),
        ("tls_server_config: {cert_file: a}", "tls_server_config.key_file: Field required"),
    ],
)
def test_bad_web_config_is_refused(sim: Sim, workdir: Path, text: str, expected: str) -> None:
    web = workdir / "web.yml"
    web.write_text(text)
    result = run_exporter(
        "--config.file", str(config_file(sim, workdir)),
        "--web.config.file", str(web), "--config.check",
    )  # fmt: skip
    assert result.returncode == 1
    assert f"{web}: {expected}" in result.stderr
    assert "Traceback" not in result.stderr
