"""Shared fixtures: start the real `coffer` binary and drive it with boto3 and the aws CLI.

The binary is found via $COFFER_BIN, else ${CARGO_TARGET_DIR:-<repo>/target}/debug/coffer.
One dev server per test session (port 0, banner parsed from stdout); tests that need a
private server (clock control) start their own with `start_coffer`.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import botocore.auth
import pytest
from botocore.config import Config

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
STARTUP_TIMEOUT = 30.0


def coffer_bin() -> Path:
    explicit = os.environ.get("COFFER_BIN")
    if explicit:
        return Path(explicit)
    target = Path(os.environ.get("CARGO_TARGET_DIR", "target"))
    if not target.is_absolute():
        target = REPO_ROOT / target
    return target / "debug" / "coffer"


def aws_cli_command() -> list[str]:
    """The `aws` CLI installed next to the running interpreter (the venv), else on PATH."""
    here = Path(sys.executable).parent / "aws"
    if here.exists():
        return [str(here)]
    found = shutil.which("aws")
    if found:
        return [found]
    return [sys.executable, "-m", "awscli"]


# --------------------------------------------------------------------------- server


@dataclass
class CofferServer:
    proc: subprocess.Popen
    banner: list[str]
    stderr_path: Path
    endpoint: str = ""
    account_id: str = ""
    access_key_id: str = ""
    secret_key: str = ""
    root_token: str = ""
    unseal_key: str = ""
    exports: dict[str, str] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    # -- banner ---------------------------------------------------------------
    def parse_banner(self) -> bool:
        fields = {
            "Endpoint": "endpoint",
            "Account id": "account_id",
            "Root access key id": "access_key_id",
            "Root secret key": "secret_key",
            "Root token": "root_token",
            "Unseal key": "unseal_key",
        }
        self.exports = {}
        self.examples = []
        for line in self.banner:
            m = re.match(r"^([A-Za-z ]+):\s+(\S+)\s*$", line)
            if m and m.group(1) in fields:
                setattr(self, fields[m.group(1)], m.group(2))
            m = re.match(r"^\s*export ([A-Z_]+)=(.*)$", line)
            if m:
                self.exports[m.group(1)] = shlex.split(m.group(2))[0] if m.group(2) else ""
            if re.match(r"^\s*aws\s", line):
                self.examples.append(line.strip())
        return all([self.endpoint, self.account_id, self.access_key_id, self.secret_key])

    # -- helpers --------------------------------------------------------------
    def client(self, service: str = "secretsmanager", **kw):
        cfg = kw.pop("config", None) or Config(retries={"max_attempts": 1, "mode": "standard"})
        return boto3.session.Session().client(
            service,
            endpoint_url=self.endpoint,
            region_name=kw.pop("region_name", REGION),
            aws_access_key_id=kw.pop("aws_access_key_id", self.access_key_id),
            aws_secret_access_key=kw.pop("aws_secret_access_key", self.secret_key),
            config=cfg,
            **kw,
        )

    def cli_env(self, **overrides: str) -> dict[str, str]:
        """A clean environment for the aws CLI: no user config, the server's root key."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        tmp = tempfile.gettempdir()
        env.update(
            AWS_ACCESS_KEY_ID=self.access_key_id,
            AWS_SECRET_ACCESS_KEY=self.secret_key,
            AWS_DEFAULT_REGION=REGION,
            AWS_CONFIG_FILE=os.path.join(tmp, "coffer-tests-no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=os.path.join(tmp, "coffer-tests-no-aws-credentials"),
            AWS_EC2_METADATA_DISABLED="true",
            AWS_PAGER="",
        )
        env.update(overrides)
        return env

    def http_post(self, path: str, body: dict | None = None) -> tuple[int, str]:
        req = urllib.request.Request(
            self.endpoint + path,
            data=json.dumps(body or {}).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "X-Vault-Token": self.root_token},
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def stderr_tail(self, n: int = 40) -> str:
        try:
            return "\n".join(self.stderr_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM if the test process dies without running finalizers."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def start_coffer(extra_args: list[str], stderr_path: Path) -> CofferServer:
    binary = coffer_bin()
    if not binary.exists():
        pytest.exit(f"coffer binary not found at {binary}: build it (cargo build -p coffer) or set COFFER_BIN", 2)
    args = [str(binary), "server", "--dev", "--listen", "127.0.0.1:0", *extra_args]
    err = open(stderr_path, "wb")
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=err,
        stdin=subprocess.DEVNULL,
        text=True,
        preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
    )
    err.close()
    server = CofferServer(proc=proc, banner=[], stderr_path=stderr_path)
    ready = threading.Event()

    def drain() -> None:  # keep reading so the server never blocks on a full pipe
        for line in proc.stdout:
            server.banner.append(line.rstrip("\n"))
            if not ready.is_set() and server.parse_banner() and len(server.examples) >= 2:
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    ready.wait(STARTUP_TIMEOUT)
    if proc.poll() is not None or not server.parse_banner():
        server.stop()
        raise RuntimeError(
            f"coffer did not start ({args}); exit={proc.poll()}\nstdout:\n"
            + "\n".join(server.banner)
            + "\nstderr:\n"
            + server.stderr_tail()
        )
    # Wait until the listener answers (the banner is printed after bind, but be safe).
    deadline = time.time() + STARTUP_TIMEOUT
    while True:
        try:
            urllib.request.urlopen(server.endpoint + "/v1/sys/health", timeout=2).read()
            break
        except urllib.error.HTTPError:
            break  # any HTTP answer means it is listening
        except OSError:
            if time.time() > deadline:
                server.stop()
                raise
            time.sleep(0.1)
    return server


@pytest.fixture(scope="session")
def coffer(tmp_path_factory) -> CofferServer:
    """The session's dev server, with its random root access key (what a user gets)."""
    server = start_coffer(["--dev-allow-reset"], tmp_path_factory.mktemp("coffer") / "stderr.log")
    yield server
    server.stop()


@pytest.fixture
def private_coffer(tmp_path):
    """A dedicated server for tests that move the server clock."""
    server = start_coffer(["--dev-allow-reset"], tmp_path / "stderr.log")
    yield server
    server.stop()


@pytest.fixture
def skewed_signing(monkeypatch):
    """Make botocore sign as if it were `seconds` later (to follow a server whose clock moved)."""

    real = botocore.auth.get_current_datetime

    def set_offset(seconds: float) -> None:
        monkeypatch.setattr(
            botocore.auth,
            "get_current_datetime",
            lambda *a, **k: real(*a, **k) + datetime.timedelta(seconds=seconds),
        )

    return set_offset


# --------------------------------------------------------------------------- clients


@pytest.fixture(scope="session")
def sm(coffer):
    return coffer.client("secretsmanager")


@pytest.fixture(scope="session")
def sm_raw(coffer):
    """A client without botocore's client-side parameter validation, to reach server-side checks."""
    return coffer.client(
        "secretsmanager",
        config=Config(parameter_validation=False, retries={"max_attempts": 1, "mode": "standard"}),
    )


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def json(self):
        return json.loads(self.stdout) if self.stdout.strip() else {}


class AwsCli:
    def __init__(self, server: CofferServer):
        self.server = server
        self.base = aws_cli_command()

    def run(self, *args: str, env: dict[str, str] | None = None, endpoint: bool = True, check: bool = True) -> CliResult:
        cmd = [*self.base]
        if endpoint:
            cmd += ["--endpoint-url", self.server.endpoint]
        cmd += ["--output", "json", *args]
        p = subprocess.run(cmd, capture_output=True, text=True, env=env or self.server.cli_env(), timeout=60)
        res = CliResult(p.returncode, p.stdout, p.stderr)
        if check and p.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed ({p.returncode}):\n{p.stderr}\n{p.stdout}")
        return res

    def sm(self, *args: str, **kw):
        """`aws secretsmanager ...` -> parsed JSON output."""
        return self.run("secretsmanager", *args, **kw).json

    def sm_error(self, *args: str, **kw) -> CliResult:
        res = self.run("secretsmanager", *args, check=False, **kw)
        assert res.returncode != 0, f"expected aws secretsmanager {args} to fail, got {res.stdout}"
        return res


@pytest.fixture(scope="session")
def aws(coffer) -> AwsCli:
    return AwsCli(coffer)


@pytest.fixture
def name(request) -> str:
    """A secret name unique to this test (valid characters only)."""
    base = re.sub(r"[^A-Za-z0-9/_+=.@-]", "-", request.node.name)[:60]
    return f"pytest/{base}/{uuid.uuid4().hex[:8]}"


def error_of(err) -> tuple[str, int, str]:
    """(code, HTTP status, message) of a botocore ClientError (or a pytest.raises ExceptionInfo of one)."""
    r = getattr(err, "value", err).response
    return r["Error"]["Code"], r["ResponseMetadata"]["HTTPStatusCode"], r["Error"].get("Message", "")
