"""The audit log through the real clients: `aws cloudtrail lookup-events` and boto3's
CloudTrail client find the calls a user made, and the file never holds the secret in clear."""

import json
import subprocess

from conftest import AwsCli, coffer_bin, start_coffer


def test_cloudtrail_lookup_events_with_the_cli_and_boto3(tmp_path):
    log = tmp_path / "audit.log"
    server = start_coffer(["--audit-file", str(log)], tmp_path / "stderr.log")
    try:
        aws = AwsCli(server)
        aws.sm("create-secret", "--name", "audited/db", "--secret-string", "s3cr3t-in-audit")
        aws.sm("get-secret-value", "--secret-id", "audited/db")

        out = aws.run("cloudtrail", "lookup-events", "--lookup-attributes",
                      "AttributeKey=EventName,AttributeValue=GetSecretValue").json
        assert [e["EventName"] for e in out["Events"]] == ["GetSecretValue"]
        event = json.loads(out["Events"][0]["CloudTrailEvent"])
        assert event["userIdentity"]["accountId"] == server.account_id
        assert event["requestParameters"]["SecretId"] == "audited/db"
        assert event["responseElements"]["SecretString"].startswith("hmac-sha256:")

        ct = server.client("cloudtrail")
        by_source = ct.lookup_events(
            LookupAttributes=[{"AttributeKey": "EventSource", "AttributeValue": "secretsmanager.amazonaws.com"}])
        assert {e["EventName"] for e in by_source["Events"]} >= {"CreateSecret", "GetSecretValue"}

        assert "s3cr3t-in-audit" not in log.read_text()
    finally:
        server.stop()
    verify = subprocess.run([str(coffer_bin()), "audit", "verify", str(log)], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stdout + verify.stderr
