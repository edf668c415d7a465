"""Hostile configs: at start, on `--config.check`, on `POST /-/reload` and on SIGHUP.

Every failure to load is a named config error that never echoes a secret, never a traceback,
and a reload that fails says so in `sync_exporter_config_last_reload_successful`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.exposition import Exposition
from tests.keys import signing_key_pem
from tests.procs import exporter_command, free_port, run_exporter, running
from tests.tools import require

GOOD = (
    "sources: [{name: a, provider: paragon, base_url: 'http://127.0.0.1:1', auth: {token: t},"
    " syncs: [x]}]\n"
)
SECRET = "hunter2-Zq9-not-for-logs"


def reload_status(url: str) -> float:
    return Exposition(httpx.get(f"{url}/metrics", timeout=30).text).value(
        "sync_exporter_config_last_reload_successful"
    )


def wait_for_line(log: Path, text: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert time.monotonic() < deadline, f"no {text!r} in the log"
        time.sleep(0.05)


def deep(levels: int) -> str:
    return "sources: " + "[" * levels + "]" * levels + "\n"


BAD_AT_START = {
    "FIFO as token_file": (
        "sources: [{name: a, provider: sequin, auth: {token_file: '{fifo}'}, syncs: [x]}]",
        "sources[0].auth: token_file '{fifo}' is not a regular file",
    ),
    "device as token_file": (
        "sources: [{name: a, provider: sequin, auth: {token_file: /dev/zero}, syncs: [x]}]",
        "sources[0].auth: token_file '/dev/zero' is not a regular file",
    ),
    "500 levels deep": (deep(500), "nested more than 64 levels deep (line 1, column "),
    "100,000 levels deep": (deep(100_000), "nested more than 64 levels deep (line 1, column "),
    "impossible date": (
        "x-when: 2023-02-30\n" + GOOD,
        "not valid YAML: a value cannot be read (ValueError)",
    ),
    "bad !!int": ("x-n: !!int twelve\n" + GOOD, "not valid YAML: a value cannot be read"),
}


@pytest.mark.parametrize("case", sorted(BAD_AT_START))
def test_unloadable_configs_are_named_errors_at_start(case: str, workdir: Path) -> None:
    fifo = workdir / "fifo"
    os.mkfifo(fifo)
    text, expected = (part.replace("{fifo}", str(fifo)) for part in BAD_AT_START[case])
    path = workdir / "bad.yml"
    path.write_text(text)
    for extra in (["--config.check"], ["--web.listen-address", f"127.0.0.1:{free_port()}"]):
        result = run_exporter("--config.file", str(path), *extra, timeout=30)
        assert result.returncode == 1, result.stderr[-2000:]
        assert f"{path}: {expected}" in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr
        assert len(result.stderr.splitlines()) < 10


@pytest.mark.parametrize("case", ["FIFO as token_file", "500 levels deep", "100,000 levels deep"])
def test_unloadable_configs_fail_reloads_by_http_and_sighup(case: str, workdir: Path) -> None:
    fifo = workdir / "fifo"
    os.mkfifo(fifo)
    text, expected = (part.replace("{fifo}", str(fifo)) for part in BAD_AT_START[case])
    config = workdir / "config.yml"
    config.write_text(GOOD)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "exporter.log"
    command = exporter_command(config, port, "--web.enable-lifecycle")
    with running(command, f"{url}/-/healthy", log=log) as process:
        config.write_text(text)
        response = httpx.post(f"{url}/-/reload", timeout=20)
        assert response.status_code == 500
        assert f"{config}: {expected}" in response.text
        assert reload_status(url) == 0
        config.write_text(GOOD)
        assert httpx.post(f"{url}/-/reload", timeout=20).status_code == 200
        assert reload_status(url) == 1
        config.write_text(text)
        process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 15
        while reload_status(url) != 0:
            assert time.monotonic() < deadline, "SIGHUP with a bad config left the metric at 1"
            time.sleep(0.1)
        assert httpx.get(f"{url}/-/healthy", timeout=5).status_code == 200
    logged = log.read_text()
    assert "Traceback" not in logged and "Exception in callback" not in logged
    assert logged.count("config reload failed") == 2


SECRET_CASES = {
    "userinfo in base_url": (
        "sources: [{name: a, provider: paragon, base_url: 'ftp://user:PASS-x1@h', auth: {token: t},"
        " syncs: [x]}]",
        "sources[0].base_url: base_url must not contain a user name or password",
        "PASS-x1",
    ),
    "userinfo in an https base_url": (
        "sources: [{name: a, provider: paragon, base_url: 'https://u:PASS-x2@h', auth: {token: t},"
        " syncs: [x]}]",
        "sources[0].base_url: base_url must not contain a user name or password",
        "PASS-x2",
    ),
    "variable in a duration": (
        GOOD + "collector: {request_timeout: '${SSE_SECRET}'}",
        "collector.request_timeout: not a duration: <value from ${SSE_SECRET}>",
        SECRET,
    ),
    "variable in an address": (
        GOOD + "web: {listen_address: 'x${SSE_SECRET}'}",
        "web.listen_address: invalid listen address <value from ${SSE_SECRET}>, expected",
        SECRET,
    ),
    "variable in a provider": (
        "sources: [{name: a, provider: '${SSE_SECRET}', auth: {token: t}, syncs: [x]}]",
        "sources[0].provider: unknown provider <value from ${SSE_SECRET}> (known:",
        SECRET,
    ),
    "variable in a base_url": (
        "sources: [{name: a, provider: paragon, base_url: 'ftp://${SSE_SECRET}', auth: {token: t},"
        " syncs: [x]}]",
        "sources[0].base_url: base_url must be an http:// or https:// URL,"
        " got <value from ${SSE_SECRET}>",
        SECRET,
    ),
    "variable in a duplicate sync id": (
        "sources: [{name: a, provider: paragon, auth: {token: t},"
        " syncs: ['${SSE_SECRET}', '${SSE_SECRET}']}]",
        "sources[0].syncs[1].id: sync id <value from ${SSE_SECRET}> is listed twice",
        SECRET,
    ),
}


@pytest.mark.parametrize("case", sorted(SECRET_CASES))
def test_config_errors_never_echo_expanded_values_or_userinfo(case: str, workdir: Path) -> None:
    text, expected, secret = SECRET_CASES[case]
    path = workdir / "bad.yml"
    path.write_text(text)
    env = {"SSE_SECRET": SECRET}
    for extra in (["--config.check"], ["--once"], []):
        result = run_exporter("--config.file", str(path), *extra, env=env, timeout=30)
        assert result.returncode == 1
        assert f"{path}: {expected}" in result.stderr, result.stderr
        assert secret not in result.stderr + result.stdout
    config = workdir / "config.yml"
    config.write_text(GOOD)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "exporter.log"
    command = exporter_command(config, port, "--web.enable-lifecycle")
    with running(command, f"{url}/-/healthy", log=log, env=env):
        config.write_text(text)
        response = httpx.post(f"{url}/-/reload", timeout=20)
        assert response.status_code == 500
        assert expected in response.text
        assert secret not in response.text
    assert "config reload failed" in log.read_text()
    assert secret not in log.read_text()


def big_config(path: Path, syncs: int) -> None:
    with path.open("w") as out:
        out.write("sources:\n")
        for source in range(3):
            out.write(
                f"  - name: s{source}\n    provider: sequin\n    base_url: http://127.0.0.1:1\n"
                "    auth: {token: t}\n    syncs:\n"
            )
            out.writelines(
                f"      - {{id: sync-{source}-{i}, labels: {{team: t{i % 7}}}}}\n"
                for i in range(syncs // 3)
            )


def test_a_big_reload_does_not_stall_health_checks(workdir: Path) -> None:
    config = workdir / "config.yml"
    config.write_text(GOOD)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "exporter.log"
    with running(exporter_command(config, port), f"{url}/-/healthy", log=log) as process:
        big_config(config, 60_000)
        latencies: list[float] = []
        stop = threading.Event()

        def poll() -> None:
            with httpx.Client(timeout=60) as client:
                while not stop.is_set():
                    started = time.monotonic()
                    assert client.get(f"{url}/-/healthy").status_code == 200
                    latencies.append(time.monotonic() - started)
                    time.sleep(0.02)

        poller = threading.Thread(target=poll)
        poller.start()
        time.sleep(0.3)
        process.send_signal(signal.SIGHUP)
        try:
            wait_for_line(log, "config reloaded", timeout=120)
        finally:
            stop.set()
            poller.join()
    assert "syncs=60000" in log.read_text()
    # Parsing 60,000 syncs takes seconds; only the swap at the end runs on the event loop.
    assert len(latencies) > 20
    assert max(latencies) < 3, f"/-/healthy stalled for {max(latencies):.1f}s"


def rsa_pem(bits: int) -> str:
    """An RSA private key of `bits` bits in PEM form (openssl: cryptography makes none < 1024)."""
    made = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", f"rsa_keygen_bits:{bits}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return made.stdout


@pytest.mark.parametrize("bits", [512, 2047])
def test_paragon_signing_keys_below_2048_bits_are_refused(bits: int, workdir: Path) -> None:
    require("openssl")
    pem = rsa_pem(bits)
    key = workdir / "key.pem"
    key.write_text(pem)
    key.chmod(0o600)
    inline = pem.replace("\n", "\\n")
    cases = {
        f"signing_key_file: '{key}'": (
            f"sources[0].auth.signing_key_file: signing_key_file '{key}' is an RSA key of"
            f" {bits} bits: a signing key needs at least 2048"
        ),
        f'signing_key: "{inline}"': (
            f"sources[0].auth.signing_key: signing_key is an RSA key of {bits} bits:"
            " a signing key needs at least 2048"
        ),
    }
    path = workdir / "weak.yml"
    for auth, expected in cases.items():
        path.write_text(
            f"sources: [{{name: a, provider: paragon, base_url: 'http://127.0.0.1:1',"
            f" auth: {{{auth}, project_id: p}}, syncs: [{{id: x, user: u}}]}}]\n"
        )
        for extra in (["--config.check"], ["--web.listen-address", f"127.0.0.1:{free_port()}"]):
            result = run_exporter("--config.file", str(path), *extra, timeout=30)
            assert result.returncode == 1, result.stderr[-2000:]
            assert f"{path}: {expected}" in result.stderr, result.stderr[-2000:]
            assert "Traceback" not in result.stderr
            assert "PRIVATE KEY" not in result.stderr and pem.splitlines()[1] not in result.stderr


def test_a_signing_key_file_open_to_others_is_warned_about_once(workdir: Path) -> None:
    pem = signing_key_pem()
    loose, tight = workdir / "loose.pem", workdir / "tight.pem"
    group, mounted = workdir / "group.pem", workdir / "mounted.pem"
    for path, mode in ((loose, 0o664), (tight, 0o600), (group, 0o640), (mounted, 0o440)):
        path.write_text(pem)
        path.chmod(mode)
    # A Kubernetes Secret with defaultMode 0440: another owner, the pod's group (fsGroup).
    mounted_by_another = os.geteuid() == 0
    if mounted_by_another:
        os.chown(mounted, 4242, os.getegid())
    config = workdir / "config.yml"
    config.write_text(
        "sources:\n"
        + "".join(
            f"  - {{name: {name}, provider: paragon, base_url: 'http://127.0.0.1:1',"
            f" auth: {{signing_key_file: '{path}', project_id: p}}, syncs: [{{id: x, user: u}}]}}\n"
            for name, path in (("a", loose), ("b", tight), ("c", group), ("d", mounted))
        )
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = workdir / "exporter.log"
    with running(
        exporter_command(config, port, "--web.enable-lifecycle"), f"{url}/-/healthy", log=log
    ):
        for _ in range(3):
            assert httpx.post(f"{url}/-/reload", timeout=20).status_code == 200
        assert httpx.get(f"{url}/metrics", timeout=30).status_code == 200
    logged = log.read_text()
    warnings = [line for line in logged.splitlines() if "open to group or others" in line]
    # Once per loose file, however many reloads: the world-writable one, and the one its
    # owner shares with a group (only the Secret-like file's group read is this pod's own).
    assert len(warnings) == 2 + (not mounted_by_another), logged[-2000:]
    assert str(loose) in warnings[0] and "0664" in warnings[0]
    assert str(group) in warnings[1] and "0640" in warnings[1]
    assert str(tight) not in logged
    assert (str(mounted) in logged) is not mounted_by_another
    assert "PRIVATE KEY" not in logged and pem.splitlines()[1] not in logged
