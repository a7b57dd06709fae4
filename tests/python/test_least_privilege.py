"""Least privilege with the real aws CLI: an IAM user limited to `ci/*`, a role assumed through
STS with narrower permissions whose credentials stop working at expiry, and every call (allowed
or denied) in the audit log without any secret value in clear."""

import json

from conftest import AwsCli, start_coffer


def _policy(*statements):
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def test_ci_pipeline_least_privilege(tmp_path):
    log = tmp_path / "audit.log"
    server = start_coffer(["--dev-allow-reset", "--audit-file", str(log)], tmp_path / "stderr.log")
    try:
        aws = AwsCli(server)
        acct = server.account_id
        secrets = {
            "ci/docker-password": "d0cker-s3cret-value",
            "ci/npm-token": "npm-s3cret-value",
            "prod/db-password": "pr0d-s3cret-value",
        }
        for name, value in secrets.items():
            aws.sm("create-secret", "--name", name, "--secret-string", value)

        role_arn = f"arn:aws:iam::{acct}:role/ci-deploy"
        aws.run("iam", "create-user", "--user-name", "ci-pipeline")
        aws.run("iam", "put-user-policy", "--user-name", "ci-pipeline", "--policy-name", "ci-read",
                "--policy-document", _policy(
                    {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                     "Resource": f"arn:aws:secretsmanager:*:{acct}:secret:ci/*"},
                    {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn},
                ))
        key = aws.run("iam", "create-access-key", "--user-name", "ci-pipeline").json["AccessKey"]
        user_env = server.cli_env(AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"])

        who = aws.run("sts", "get-caller-identity", env=user_env).json
        assert who["Arn"] == f"arn:aws:iam::{acct}:user/ci-pipeline"

        # Allowed: its own prefix.
        got = aws.sm("get-secret-value", "--secret-id", "ci/docker-password", env=user_env)
        assert got["SecretString"] == secrets["ci/docker-password"]

        # Denied: another prefix, with AWS's message naming the action and the resource.
        res = aws.sm_error("get-secret-value", "--secret-id", "prod/db-password", env=user_env)
        assert "AccessDeniedException" in res.stderr
        assert f"User: arn:aws:iam::{acct}:user/ci-pipeline is not authorized to perform: " \
               "secretsmanager:GetSecretValue on resource: arn:aws:secretsmanager:" in res.stderr
        assert "no identity-based policy allows" in res.stderr
        # A secret that does not exist is denied the same way: no hint that it is missing.
        res = aws.sm_error("get-secret-value", "--secret-id", "prod/does-not-exist", env=user_env)
        assert "AccessDeniedException" in res.stderr and "ResourceNotFound" not in res.stderr
        # Denied: another action and another service.
        res = aws.run("ssm", "put-parameter", "--name", "/ci/flag", "--value", "x", "--type", "String",
                      env=user_env, check=False)
        assert res.returncode != 0 and "AccessDeniedException" in res.stderr
        assert "ssm:PutParameter" in res.stderr
        # Denied: IAM itself (the Query protocol answers AccessDenied).
        res = aws.run("iam", "create-user", "--user-name", "intruder", env=user_env, check=False)
        assert res.returncode != 0 and "AccessDenied" in res.stderr

        # A role with narrower permissions: only ci/docker-password.
        aws.run("iam", "create-role", "--role-name", "ci-deploy", "--assume-role-policy-document", _policy(
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{acct}:root"}, "Action": "sts:AssumeRole"}))
        aws.run("iam", "put-role-policy", "--role-name", "ci-deploy", "--policy-name", "deploy-read",
                "--policy-document", _policy(
                    {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
                     "Resource": f"arn:aws:secretsmanager:*:{acct}:secret:ci/docker-password-*"}))
        creds = aws.run("sts", "assume-role", "--role-arn", role_arn, "--role-session-name", "deploy",
                        "--duration-seconds", "900", env=user_env).json["Credentials"]
        role_env = server.cli_env(AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
                                  AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
                                  AWS_SESSION_TOKEN=creds["SessionToken"])
        who = aws.run("sts", "get-caller-identity", env=role_env).json
        assert who["Arn"] == f"arn:aws:sts::{acct}:assumed-role/ci-deploy/deploy"
        got = aws.sm("get-secret-value", "--secret-id", "ci/docker-password", env=role_env)
        assert got["SecretString"] == secrets["ci/docker-password"]
        res = aws.sm_error("get-secret-value", "--secret-id", "ci/npm-token", env=role_env)
        assert "AccessDeniedException" in res.stderr
        assert f"arn:aws:sts::{acct}:assumed-role/ci-deploy/deploy is not authorized" in res.stderr

        # A role whose trust policy does not name the caller cannot be assumed.
        aws.run("iam", "create-role", "--role-name", "locked", "--assume-role-policy-document", _policy(
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::210987654321:root"}, "Action": "sts:AssumeRole"}))
        res = aws.run("sts", "assume-role", "--role-arn", f"arn:aws:iam::{acct}:role/locked",
                      "--role-session-name", "nope", env=user_env, check=False)
        assert res.returncode != 0 and "AccessDenied" in res.stderr

        # After expiry (business time moves on the dev clock) the session is refused.
        status, body = server.http_post("/v1/sys/coffer/clock", {"advance_seconds": 901})
        assert status == 200, body
        res = aws.sm_error("get-secret-value", "--secret-id", "ci/docker-password", env=role_env)
        assert "ExpiredTokenException" in res.stderr
        res = aws.run("sts", "get-caller-identity", env=role_env, check=False)
        assert res.returncode != 0 and "ExpiredToken" in res.stderr
        # The user's long-term key still works.
        aws.sm("get-secret-value", "--secret-id", "ci/docker-password", env=user_env)
    finally:
        server.stop()

    text = log.read_text()
    for value in secrets.values():
        assert value not in text
    assert key["SecretAccessKey"] not in text
    assert creds["SecretAccessKey"] not in text and creds["SessionToken"] not in text

    events = [json.loads(line) for line in text.splitlines() if line.strip()]

    def find(name, arn_part, **kw):
        out = []
        for e in events:
            ident = e.get("userIdentity") or {}
            if e.get("eventName") != name or arn_part not in (ident.get("arn") or ""):
                continue
            if "secret" in kw and (e.get("requestParameters") or {}).get("SecretId") != kw["secret"]:
                continue
            out.append(e)
        return out

    user = "user/ci-pipeline"
    session = "assumed-role/ci-deploy/deploy"
    ok = find("GetSecretValue", user, secret="ci/docker-password")
    assert ok and all("errorCode" not in e for e in ok)
    for secret in ("prod/db-password", "prod/does-not-exist"):
        denied = find("GetSecretValue", user, secret=secret)
        assert denied and all(e.get("errorCode") == "AccessDeniedException" for e in denied), denied
    assert [e.get("errorCode") for e in find("PutParameter", user)] == ["AccessDeniedException"]
    assert [e.get("errorCode") for e in find("CreateUser", user)] == ["AccessDenied"]
    assert [e.get("errorCode") for e in find("AssumeRole", user)] == [None, "AccessDenied"]
    role_reads = find("GetSecretValue", session, secret="ci/docker-password")
    assert [e.get("errorCode") for e in role_reads] == [None]
    assert [e.get("errorCode") for e in find("GetSecretValue", session, secret="ci/npm-token")] == [
        "AccessDeniedException"]
    assert find("GetSecretValue", session) and find("GetCallerIdentity", session)
    # The expired session's calls are recorded too (as far as the signature got: the key id).
    expired = [e for e in events if e.get("errorCode") in ("ExpiredTokenException", "ExpiredToken")]
    assert len(expired) == 2
    assert all((e.get("userIdentity") or {}).get("accessKeyId") == creds["AccessKeyId"] for e in expired)
    assert find("CreateUser", f"{acct}:root") and find("PutUserPolicy", f"{acct}:root")
