"""Rotation with a `command` rotation function written in Python with boto3, exactly as one
is written for AWS Lambda: it reads the Lambda event, builds its client from
SECRETS_MANAGER_ENDPOINT, and runs the generic template's four steps. Coffer runs it with
short-lived credentials scoped to the one secret; the aws CLI starts the rotation."""

import json
import subprocess
import sys
import time

from conftest import AwsCli, coffer_bin, start_coffer

ROTATOR = r'''
import json, os, sys
import boto3
from botocore.exceptions import ClientError

event = json.load(sys.stdin)
probe_file = sys.argv[1]
sm = boto3.client("secretsmanager", endpoint_url=os.environ["SECRETS_MANAGER_ENDPOINT"])
arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]

meta = sm.describe_secret(SecretId=arn)
if not meta["RotationEnabled"]:
    raise ValueError("rotation is not enabled")
stages = meta["VersionIdsToStages"].get(token)
if stages is None:
    raise ValueError("no version for the rotation")
if "AWSCURRENT" in stages:
    sys.exit(0)
if "AWSPENDING" not in stages:
    raise ValueError("the version is not pending")

if step == "createSecret":
    current = json.loads(sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
    try:
        sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        current["api_key"] = sm.get_random_password(PasswordLength=40, ExcludePunctuation=True)["RandomPassword"]
        sm.put_secret_value(SecretId=arn, ClientRequestToken=token,
                            SecretString=json.dumps(current), VersionStages=["AWSPENDING"])
    # The credentials are scoped to this secret: another one is out of reach.
    try:
        sm.get_secret_value(SecretId="other/secret")
        outcome = "allowed"
    except ClientError as e:
        outcome = e.response["Error"]["Code"]
    with open(probe_file, "w") as f:
        f.write(outcome)
elif step == "setSecret":
    pass  # the service the key belongs to would be told here
elif step == "testSecret":
    pending = json.loads(sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")["SecretString"])
    assert len(pending["api_key"]) == 40
elif step == "finishSecret":
    current = next(v for v, s in meta["VersionIdsToStages"].items() if "AWSCURRENT" in s)
    sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT",
                                   MoveToVersionId=token, RemoveFromVersionId=current)
else:
    raise ValueError("unknown step " + step)
'''


def _coffer(server, *args):
    env = server.cli_env(AWS_ENDPOINT_URL=server.endpoint)
    p = subprocess.run([str(coffer_bin()), *args], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, f"coffer {args} failed:\n{p.stderr}"
    return p


def _wait(predicate, what, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_python_command_function_rotates_a_secret(tmp_path):
    log = tmp_path / "audit.log"
    server = start_coffer(["--audit-file", str(log)], tmp_path / "stderr.log")
    try:
        aws = AwsCli(server)
        script = tmp_path / "rotator.py"
        script.write_text(ROTATOR)
        probe = tmp_path / "probe.txt"
        old = {"user": "svc", "api_key": "old-api-key-0123456789"}
        aws.sm("create-secret", "--name", "app/api-key", "--secret-string", json.dumps(old))
        aws.sm("create-secret", "--name", "other/secret", "--secret-string", "not-for-the-rotator")

        created = json.loads(_coffer(server, "function", "create", "py-rotator", "--command", sys.executable,
                                     "--arg", str(script), "--arg", str(probe), "--timeout", "60").stdout)
        arn = created["FunctionArn"]
        assert arn == f"arn:aws:lambda:us-east-1:{server.account_id}:function:py-rotator"
        listed = json.loads(_coffer(server, "function", "list").stdout)["Functions"]
        names = {f["FunctionName"] for f in listed}
        assert {"py-rotator", "coffer-postgresql-single-user", "coffer-mysql-alternating-users"} <= names

        started = aws.sm("rotate-secret", "--secret-id", "app/api-key", "--rotation-lambda-arn", arn,
                         "--rotation-rules", "AutomaticallyAfterDays=7")
        token = started["VersionId"]

        def rotated():
            return json.loads(aws.sm("get-secret-value", "--secret-id", "app/api-key")["SecretString"]) != old

        _wait(rotated, "the command function's rotation")
        new = json.loads(aws.sm("get-secret-value", "--secret-id", "app/api-key")["SecretString"])
        assert new["user"] == "svc" and len(new["api_key"]) == 40
        previous = aws.sm("get-secret-value", "--secret-id", "app/api-key", "--version-stage", "AWSPREVIOUS")
        assert json.loads(previous["SecretString"]) == old
        meta = aws.sm("describe-secret", "--secret-id", "app/api-key")
        assert meta["VersionIdsToStages"][token] == ["AWSCURRENT"]
        assert meta["RotationEnabled"] is True and "LastRotatedDate" in meta and "NextRotationDate" in meta
        assert probe.read_text() == "AccessDeniedException"

        status = json.loads(_coffer(server, "secrets", "rotation-status", "app/api-key").stdout)
        assert status["FailedAttempts"] == 0 and "LastError" not in status

        # The run is audited: start, each step, success; the function's own calls as its
        # scoped session; no value in clear.
        _wait(lambda: "RotationSucceeded" in log.read_text(), "the audit of the rotation's end", 10)
        events = [json.loads(line) for line in log.read_text().splitlines()]
        names = [e["eventName"] for e in events]
        assert "RotationStarted" in names
        steps = [e["requestParameters"] for e in events if e["eventName"] == "Invoke"]
        assert len(steps) == 4
        by_session = [e for e in events
                      if e.get("userIdentity", {}).get("arn", "").startswith(
                          f"arn:aws:sts::{server.account_id}:assumed-role/coffer-rotation/")]
        assert {"DescribeSecret", "PutSecretValue", "UpdateSecretVersionStage"} <= {e["eventName"] for e in by_session}
        denied = [e for e in by_session if e.get("errorCode") == "AccessDeniedException"]
        assert len(denied) == 1, denied
        assert "secret:other/secret" in denied[0]["errorMessage"], denied
        text = log.read_text()
        assert old["api_key"] not in text and new["api_key"] not in text
    finally:
        server.stop()


def test_failing_command_function_keeps_awscurrent_and_reports_why(tmp_path):
    server = start_coffer([], tmp_path / "stderr.log")
    try:
        aws = AwsCli(server)
        script = tmp_path / "broken.py"
        script.write_text("import sys\nsys.stdin.read()\nprint('database unreachable at db:5432', file=sys.stderr)\nsys.exit(3)\n")
        arn = json.loads(_coffer(server, "function", "create", "broken", "--command", sys.executable,
                                 "--arg", str(script)).stdout)["FunctionArn"]
        aws.sm("create-secret", "--name", "app/db", "--secret-string", "still-good")
        aws.sm("rotate-secret", "--secret-id", "app/db", "--rotation-lambda-arn", arn)

        def failed():
            s = json.loads(_coffer(server, "secrets", "rotation-status", "app/db").stdout)
            return s["FailedAttempts"] >= 1

        _wait(failed, "the failed attempt")
        status = json.loads(_coffer(server, "secrets", "rotation-status", "app/db").stdout)
        assert status["LastError"]["Step"] == "createSecret"
        assert "exit status 3" in status["LastError"]["Message"]
        assert "database unreachable" in status["LastError"]["Message"]
        assert "PendingVersionId" in status
        assert aws.sm("get-secret-value", "--secret-id", "app/db")["SecretString"] == "still-good"
        # Wrong shapes and unknown functions are refused when rotation is configured.
        aws.sm("create-secret", "--name", "app/plain", "--secret-string", "not-json")
        builtin = f"arn:aws:lambda:us-east-1:{server.account_id}:function:coffer-postgresql-single-user"
        bad = aws.sm_error("rotate-secret", "--secret-id", "app/plain", "--rotation-lambda-arn", builtin)
        assert "InvalidRequestException" in bad.stderr and "coffer-postgresql-single-user" in bad.stderr
        unknown = f"arn:aws:lambda:us-east-1:{server.account_id}:function:nope"
        bad = aws.sm_error("rotate-secret", "--secret-id", "app/plain", "--rotation-lambda-arn", unknown)
        assert "AccessDeniedException" in bad.stderr
        assert "RotationEnabled" not in aws.sm("describe-secret", "--secret-id", "app/plain")
    finally:
        server.stop()
