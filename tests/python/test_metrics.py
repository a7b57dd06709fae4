"""`/metrics` as Prometheus scrapes it: the text is parsed by the official Python client's
parser (prometheus_client.parser), and the families an operator expects are there with the
requests just made counted, and no secret name in any label."""

import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from conftest import AwsCli, start_coffer


def scrape(server, token=None):
    req = urllib.request.Request(server.endpoint + "/metrics")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        return resp.read().decode()


def test_metrics_are_scraped_by_the_prometheus_parser(tmp_path):
    log = tmp_path / "audit.log"
    # redb storage (--dev-storage), so storage commits are measured too.
    server = start_coffer(["--audit-file", str(log), "--dev-storage", str(tmp_path / "dev.redb")],
                          tmp_path / "stderr.log")
    try:
        aws = AwsCli(server)
        aws.sm("create-secret", "--name", "metrics/very-secret-name", "--secret-string", "v")
        aws.sm("get-secret-value", "--secret-id", "metrics/very-secret-name")
        missing = aws.run("secretsmanager", "get-secret-value", "--secret-id", "metrics/missing", check=False)
        assert missing.returncode != 0
        aws.run("sts", "get-caller-identity")
        bogus = urllib.request.Request(server.endpoint + "/", data=b"{}", method="POST", headers={
            "X-Amz-Target": "secretsmanager.NoSuchOperation", "Content-Type": "application/x-amz-json-1.1"})
        try:
            urllib.request.urlopen(bogus, timeout=10)
        except urllib.error.HTTPError as e:
            assert e.code == 400

        text = scrape(server)
        families = {f.name: f for f in text_string_to_metric_families(text)}

        def samples(name):
            return families[name].samples

        requests = {(s.labels["api"], s.labels["operation"], s.labels["status"]): s.value
                    for s in samples("coffer_requests")}
        assert requests[("secretsmanager", "CreateSecret", "200")] == 1
        assert requests[("secretsmanager", "GetSecretValue", "200")] == 1
        assert requests[("secretsmanager", "GetSecretValue", "400")] == 1
        assert requests[("sts", "GetCallerIdentity", "200")] == 1
        errors = {(s.labels["operation"], s.labels["code"]): s.value for s in samples("coffer_request_errors")}
        assert errors[("GetSecretValue", "ResourceNotFoundException")] == 1

        latency = families["coffer_request_duration_seconds"]
        assert latency.type == "histogram"
        buckets = [s for s in latency.samples
                   if s.name.endswith("_bucket") and s.labels["operation"] == "CreateSecret"]
        assert buckets and buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 1

        assert samples("coffer_sealed")[0].value == 0
        assert samples("coffer_initialized")[0].value == 1
        assert samples("coffer_connections_open")[0].value >= 1
        assert samples("coffer_connections_accepted")[0].value >= 1
        assert families["coffer_storage_commit_seconds"].type == "histogram"
        written = {s.labels["device"]: s.value for s in samples("coffer_audit_lines_written")}
        assert written["file"] >= 4
        assert "coffer_audit_queue_depth" in families

        # Operations and routes only: no secret's name is a label.
        assert "very-secret-name" not in text
        # A made-up target does not become a label.
        assert "NoSuchOperation" not in text
    finally:
        server.stop()


def test_production_metrics_need_a_token_unless_opened(tmp_path):
    # Dev mode serves /metrics openly; a production config needs a token (as Vault's
    # sys/metrics does) unless [telemetry] unauthenticated_metrics_access is set.
    import json
    import socket
    import subprocess

    from conftest import coffer_bin

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "coffer.toml"
    cfg.write_text(
        f'[listener]\naddress = "127.0.0.1:{port}"\ndangerous_plaintext_http = true\n'
        f'[storage]\npath = "{tmp_path / "data.redb"}"\n'
    )
    proc = subprocess.Popen([str(coffer_bin()), "server", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert "Coffer listening on" in proc.stdout.readline()
        url = f"http://127.0.0.1:{port}/metrics"
        try:
            urllib.request.urlopen(url, timeout=5)
            raise AssertionError("served without a token")
        except urllib.error.HTTPError as e:
            assert e.code == 403
        init = subprocess.run([str(coffer_bin()), "operator", "init", "--shares", "1", "--threshold", "1",
                               "--json", "--address", f"http://127.0.0.1:{port}"],
                              capture_output=True, text=True, check=True)
        out = json.loads(init.stdout)
        subprocess.run([str(coffer_bin()), "operator", "unseal", out["keys_base64"][0],
                        "--address", f"http://127.0.0.1:{port}"], capture_output=True, check=True)
        try:
            urllib.request.urlopen(url, timeout=5)
            raise AssertionError("served without a token")
        except urllib.error.HTTPError as e:
            assert e.code == 403
        try:
            urllib.request.urlopen(urllib.request.Request(url, headers={"X-Vault-Token": "hvs.bogus"}), timeout=5)
            raise AssertionError("served with a bad token")
        except urllib.error.HTTPError as e:
            assert e.code == 403
        req = urllib.request.Request(url, headers={"X-Vault-Token": out["root_token"]})
        text = urllib.request.urlopen(req, timeout=5).read().decode()
        families = {f.name for f in text_string_to_metric_families(text)}
        assert {"coffer_sealed", "coffer_requests"} <= families
    finally:
        proc.terminate()
        proc.wait(timeout=15)
