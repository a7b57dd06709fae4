"""What a user does with the real `aws` CLI (awscli v1) pointed at Coffer."""

from __future__ import annotations

import base64
import os
import shlex
import string
import uuid

import pytest

pytestmark = pytest.mark.cli


def test_quickstart_exactly_as_printed_by_the_banner(coffer, aws):
    """Run the banner's `export` lines and example commands verbatim."""
    assert len(coffer.examples) == 2, coffer.banner
    create_cmd, get_cmd = coffer.examples
    assert " create-secret " in create_cmd and " get-secret-value " in get_cmd
    env = coffer.cli_env(**coffer.exports)
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
        assert k in coffer.exports, f"banner lacks export {k}"

    def run(cmd: str):
        argv = shlex.split(cmd)
        assert argv[0] == "aws"
        return aws.run(*argv[1:], env=env, endpoint=False)  # --endpoint-url is in the printed line

    created = run(create_cmd).json
    name = shlex.split(create_cmd)[shlex.split(create_cmd).index("--name") + 1]
    value = shlex.split(create_cmd)[shlex.split(create_cmd).index("--secret-string") + 1]
    assert created["Name"] == name
    assert created["ARN"].startswith(f"arn:aws:secretsmanager:us-east-1:{coffer.account_id}:secret:{name}-")
    assert len(created["ARN"].rsplit("-", 1)[1]) == 6
    uuid.UUID(created["VersionId"])  # the CLI injected a ClientRequestToken; it becomes the VersionId

    got = run(get_cmd).json
    assert got["SecretString"] == value
    assert got["Name"] == name and got["ARN"] == created["ARN"]
    assert got["VersionId"] == created["VersionId"]
    assert got["VersionStages"] == ["AWSCURRENT"]


def test_exported_endpoint_variable_without_endpoint_flag(coffer, aws, name):
    """`export AWS_ENDPOINT_URL=...` from the banner is enough; no --endpoint-url needed."""
    env = coffer.cli_env(**coffer.exports)
    aws.run("secretsmanager", "create-secret", "--name", name, "--secret-string", "v1", env=env, endpoint=False)
    got = aws.run("secretsmanager", "get-secret-value", "--secret-id", name, env=env, endpoint=False).json
    assert got["SecretString"] == "v1"


def test_put_secret_value_and_awsprevious(aws, name):
    v1 = aws.sm("create-secret", "--name", name, "--secret-string", '{"user":"app","password":"one"}')
    v2 = aws.sm("put-secret-value", "--secret-id", name, "--secret-string", '{"user":"app","password":"two"}')
    assert v2["VersionId"] != v1["VersionId"]
    assert v2["VersionStages"] == ["AWSCURRENT"]
    assert v2["Name"] == name and v2["ARN"] == v1["ARN"]

    cur = aws.sm("get-secret-value", "--secret-id", name)
    assert cur["SecretString"] == '{"user":"app","password":"two"}'
    assert cur["VersionId"] == v2["VersionId"]
    prev = aws.sm("get-secret-value", "--secret-id", name, "--version-stage", "AWSPREVIOUS")
    assert prev["SecretString"] == '{"user":"app","password":"one"}'
    assert prev["VersionId"] == v1["VersionId"]
    assert prev["VersionStages"] == ["AWSPREVIOUS"]
    by_id = aws.sm("get-secret-value", "--secret-id", name, "--version-id", v1["VersionId"])
    assert by_id["SecretString"] == '{"user":"app","password":"one"}'

    # A third value: AWSPREVIOUS moves to v2, v1 loses all labels (deprecated, hidden by default).
    v3 = aws.sm("put-secret-value", "--secret-id", name, "--secret-string", "three")
    stages = aws.sm("describe-secret", "--secret-id", name)["VersionIdsToStages"]
    assert stages == {v3["VersionId"]: ["AWSCURRENT"], v2["VersionId"]: ["AWSPREVIOUS"]}
    versions = aws.sm("list-secret-version-ids", "--secret-id", name)["Versions"]
    assert {v["VersionId"] for v in versions} == {v2["VersionId"], v3["VersionId"]}
    versions = aws.sm("list-secret-version-ids", "--secret-id", name, "--include-deprecated")["Versions"]
    assert {v["VersionId"] for v in versions} == {v1["VersionId"], v2["VersionId"], v3["VersionId"]}


def test_put_secret_value_with_custom_stage_does_not_move_current(aws, name):
    v1 = aws.sm("create-secret", "--name", name, "--secret-string", "one")
    pending = aws.sm(
        "put-secret-value", "--secret-id", name, "--secret-string", "two", "--version-stages", "AWSPENDING"
    )
    assert pending["VersionStages"] == ["AWSPENDING"]
    assert aws.sm("get-secret-value", "--secret-id", name)["VersionId"] == v1["VersionId"]
    got = aws.sm("get-secret-value", "--secret-id", name, "--version-stage", "AWSPENDING")
    assert got["SecretString"] == "two"


def test_describe_secret(coffer, aws, name):
    created = aws.sm(
        "create-secret", "--name", name, "--description", "the db password",
        "--secret-string", "pw", "--tags", "Key=team,Value=payments", "Key=env,Value=dev",
    )
    d = aws.sm("describe-secret", "--secret-id", name)
    assert d["ARN"] == created["ARN"]
    assert d["Name"] == name
    assert d["Description"] == "the db password"
    assert sorted(d["Tags"], key=lambda t: t["Key"]) == [
        {"Key": "env", "Value": "dev"},
        {"Key": "team", "Value": "payments"},
    ]
    assert d["VersionIdsToStages"] == {created["VersionId"]: ["AWSCURRENT"]}
    for k in ("CreatedDate", "LastChangedDate"):
        assert k in d, d
    assert "DeletedDate" not in d
    assert "KmsKeyId" not in d  # default aws/secretsmanager key is omitted
    assert not d.get("RotationEnabled", False)
    # Same answer by full ARN and by partial ARN (without the 6-character suffix).
    assert aws.sm("describe-secret", "--secret-id", created["ARN"])["Name"] == name
    partial = created["ARN"][: -len("-xxxxxx")]
    assert aws.sm("describe-secret", "--secret-id", partial)["ARN"] == created["ARN"]


def test_update_secret_description_and_value(aws, name):
    v1 = aws.sm("create-secret", "--name", name, "--secret-string", "one", "--description", "before")
    # Description only: the CLI still injects a ClientRequestToken, but no version is created.
    upd = aws.sm("update-secret", "--secret-id", name, "--description", "after")
    assert upd["Name"] == name and "VersionId" not in upd
    d = aws.sm("describe-secret", "--secret-id", name)
    assert d["Description"] == "after"
    assert d["VersionIdsToStages"] == {v1["VersionId"]: ["AWSCURRENT"]}
    upd = aws.sm("update-secret", "--secret-id", name, "--secret-string", "two")
    assert upd["VersionId"] != v1["VersionId"]
    assert aws.sm("get-secret-value", "--secret-id", name)["SecretString"] == "two"
    prev = aws.sm("get-secret-value", "--secret-id", name, "--version-stage", "AWSPREVIOUS")
    assert prev["SecretString"] == "one"


def test_list_secrets_filters_and_auto_pagination(aws):
    prefix = f"pytest/list-{uuid.uuid4().hex[:8]}"
    for i in range(7):
        tags = ["Key=owner,Value=alice" if i % 2 == 0 else "Key=owner,Value=bob"]
        if i == 4:
            tags.append("Key=special,Value=yes")
        aws.sm(
            "create-secret", "--name", f"{prefix}/s{i}", "--secret-string", f"v{i}",
            "--description", f"Database {'primary' if i < 2 else 'replica'} {i}", "--tags", *tags,
        )
    expected = {f"{prefix}/s{i}" for i in range(7)}

    def names(*extra):
        return {s["Name"] for s in aws.sm("list-secrets", *extra)["SecretList"]}

    # The CLI follows NextToken by itself; --page-size sets MaxResults per request.
    assert names("--filters", f"Key=name,Values={prefix}", "--page-size", "2") == expected
    assert names("--filters", f"Key=name,Values={prefix}/s1") == {f"{prefix}/s1"}
    both = ["--filters", f"Key=name,Values={prefix}"]
    assert names(*both, "Key=tag-key,Values=special") == {f"{prefix}/s4"}
    assert names(*both, "Key=tag-value,Values=bob") == {f"{prefix}/s{i}" for i in (1, 3, 5)}
    # description: prefix match, case-insensitive
    assert names(*both, "Key=description,Values=database primary") == {f"{prefix}/s0", f"{prefix}/s1"}
    # a value starting with ! negates
    assert names(*both, "Key=tag-value,Values=!bob") == {f"{prefix}/s{i}" for i in (0, 2, 4, 6)}

    # --max-items: the CLI stops early and prints a NextToken to resume from.
    first = aws.sm("list-secrets", *both, "--page-size", "2", "--max-items", "3")
    assert len(first["SecretList"]) == 3 and first.get("NextToken")
    rest = aws.sm("list-secrets", *both, "--page-size", "2", "--starting-token", first["NextToken"])
    got = [s["Name"] for s in first["SecretList"]] + [s["Name"] for s in rest["SecretList"]]
    assert sorted(got) == sorted(expected)

    entry = next(s for s in aws.sm("list-secrets", *both)["SecretList"] if s["Name"] == f"{prefix}/s4")
    assert entry["Description"] == "Database replica 4"
    assert {"Key": "special", "Value": "yes"} in entry["Tags"]
    assert list(entry["SecretVersionsToStages"].values()) == [["AWSCURRENT"]]

    # Secrets scheduled for deletion are hidden unless asked for.
    aws.sm("delete-secret", "--secret-id", f"{prefix}/s6", "--recovery-window-in-days", "7")
    assert names(*both) == expected - {f"{prefix}/s6"}
    assert names(*both, "--include-planned-deletion") == expected


def test_binary_secret_via_fileb(aws, name, tmp_path):
    payload = bytes(range(256)) + os.urandom(64)
    f = tmp_path / "blob.bin"
    f.write_bytes(payload)
    created = aws.sm("create-secret", "--name", name, "--secret-binary", f"fileb://{f}")
    got = aws.sm("get-secret-value", "--secret-id", name)
    assert "SecretString" not in got
    assert base64.b64decode(got["SecretBinary"]) == payload  # the CLI prints blobs as base64
    assert got["VersionId"] == created["VersionId"]

    payload2 = b"\x00\xffsecond\x00"
    f.write_bytes(payload2)
    aws.sm("put-secret-value", "--secret-id", name, "--secret-binary", f"fileb://{f}")
    assert base64.b64decode(aws.sm("get-secret-value", "--secret-id", name)["SecretBinary"]) == payload2


def test_tags(aws, name):
    aws.sm("create-secret", "--name", name, "--secret-string", "x", "--tags", "Key=a,Value=1")
    aws.run("secretsmanager", "tag-resource", "--secret-id", name, "--tags", "Key=b,Value=2", "Key=a,Value=10")
    tags = {t["Key"]: t["Value"] for t in aws.sm("describe-secret", "--secret-id", name)["Tags"]}
    assert tags == {"a": "10", "b": "2"}
    aws.run("secretsmanager", "untag-resource", "--secret-id", name, "--tag-keys", "a", "absent-key")
    tags = {t["Key"]: t["Value"] for t in aws.sm("describe-secret", "--secret-id", name).get("Tags", [])}
    assert tags == {"b": "2"}


def test_delete_with_recovery_window_then_restore(aws, name):
    created = aws.sm("create-secret", "--name", name, "--secret-string", "keep me")
    deleted = aws.sm("delete-secret", "--secret-id", name, "--recovery-window-in-days", "7")
    assert deleted["Name"] == name and deleted["ARN"] == created["ARN"]
    d = aws.sm("describe-secret", "--secret-id", name)
    assert "DeletedDate" in d
    window = float(deleted["DeletionDate"]) - float(d["DeletedDate"])
    assert abs(window - 7 * 86400) < 120, (deleted, d)

    err = aws.sm_error("get-secret-value", "--secret-id", name)
    assert "InvalidRequestException" in err.stderr
    err = aws.sm_error("create-secret", "--name", name, "--secret-string", "again")
    assert "InvalidRequestException" in err.stderr

    restored = aws.sm("restore-secret", "--secret-id", name)
    assert restored == {"ARN": created["ARN"], "Name": name}
    assert "DeletedDate" not in aws.sm("describe-secret", "--secret-id", name)
    assert aws.sm("get-secret-value", "--secret-id", name)["SecretString"] == "keep me"


def test_force_delete_without_recovery(aws, name):
    first = aws.sm("create-secret", "--name", name, "--secret-string", "x")
    aws.sm("delete-secret", "--secret-id", name, "--force-delete-without-recovery")
    err = aws.sm_error("describe-secret", "--secret-id", name)
    assert "ResourceNotFoundException" in err.stderr
    # The name is free again, and the new secret gets a new ARN suffix.
    second = aws.sm("create-secret", "--name", name, "--secret-string", "y")
    assert second["ARN"] != first["ARN"]
    assert aws.sm("get-secret-value", "--secret-id", name)["SecretString"] == "y"


def test_get_random_password(aws):
    pw = aws.sm("get-random-password")["RandomPassword"]
    assert len(pw) == 32
    pw = aws.sm("get-random-password", "--password-length", "64", "--exclude-punctuation")["RandomPassword"]
    assert len(pw) == 64 and all(c in string.ascii_letters + string.digits for c in pw)
    pw = aws.sm(
        "get-random-password", "--password-length", "20", "--exclude-characters", "abcdefABCDEF0123456789",
        "--exclude-punctuation", "--exclude-uppercase",
    )["RandomPassword"]
    assert len(pw) == 20 and set(pw) <= set("ghijklmnopqrstuvwxyz")
    pw = aws.sm("get-random-password", "--password-length", "4", "--require-each-included-type")["RandomPassword"]
    assert any(c.islower() for c in pw) and any(c.isupper() for c in pw)
    assert any(c.isdigit() for c in pw) and any(c in string.punctuation for c in pw)
    pw = aws.sm("get-random-password", "--password-length", "200", "--include-space")["RandomPassword"]
    assert len(pw) == 200


def test_update_secret_version_stage(aws, name):
    v1 = aws.sm("create-secret", "--name", name, "--secret-string", "one")["VersionId"]
    v2 = aws.sm("put-secret-value", "--secret-id", name, "--secret-string", "two")["VersionId"]

    # Moving AWSCURRENT requires naming the version it is on now.
    err = aws.sm_error(
        "update-secret-version-stage", "--secret-id", name, "--version-stage", "AWSCURRENT",
        "--move-to-version-id", v1,
    )
    assert "InvalidParameterException" in err.stderr

    # Roll back: AWSCURRENT to v1; AWSPREVIOUS follows to the version AWSCURRENT left.
    out = aws.sm(
        "update-secret-version-stage", "--secret-id", name, "--version-stage", "AWSCURRENT",
        "--move-to-version-id", v1, "--remove-from-version-id", v2,
    )
    assert out["Name"] == name
    assert aws.sm("get-secret-value", "--secret-id", name)["SecretString"] == "one"
    stages = aws.sm("describe-secret", "--secret-id", name)["VersionIdsToStages"]
    assert stages == {v1: ["AWSCURRENT"], v2: ["AWSPREVIOUS"]}

    # A custom label on top.
    aws.sm("update-secret-version-stage", "--secret-id", name, "--version-stage", "blue", "--move-to-version-id", v2)
    assert aws.sm("get-secret-value", "--secret-id", name, "--version-stage", "blue")["VersionId"] == v2
    aws.sm("update-secret-version-stage", "--secret-id", name, "--version-stage", "blue", "--remove-from-version-id", v2)
    err = aws.sm_error("get-secret-value", "--secret-id", name, "--version-stage", "blue")
    assert "ResourceNotFoundException" in err.stderr


def test_batch_get_secret_value(aws):
    prefix = f"pytest/batch-{uuid.uuid4().hex[:8]}"
    for i in range(3):
        aws.sm("create-secret", "--name", f"{prefix}/s{i}", "--secret-string", f"value-{i}")
    out = aws.sm("batch-get-secret-value", "--secret-id-list", f"{prefix}/s0", f"{prefix}/s2", f"{prefix}/missing")
    assert {v["Name"]: v["SecretString"] for v in out["SecretValues"]} == {
        f"{prefix}/s0": "value-0",
        f"{prefix}/s2": "value-2",
    }
    assert all(v["VersionStages"] == ["AWSCURRENT"] for v in out["SecretValues"])
    assert len(out["Errors"]) == 1
    assert out["Errors"][0]["SecretId"] == f"{prefix}/missing"
    assert out["Errors"][0]["ErrorCode"] == "ResourceNotFoundException"

    # By filter, paging by hand (the CLI has no paginator for this operation).
    values, token, pages = [], None, 0
    while True:
        extra = ["--next-token", token] if token else []
        out = aws.sm("batch-get-secret-value", "--filters", f"Key=name,Values={prefix}", "--max-results", "2", *extra)
        values += [v["SecretString"] for v in out["SecretValues"]]
        pages += 1
        token = out.get("NextToken")
        if not token or pages > 5:
            break
    assert sorted(values) == ["value-0", "value-1", "value-2"]
    assert pages >= 2


def test_cli_errors_are_reported(aws, name):
    err = aws.sm_error("get-secret-value", "--secret-id", name)
    assert "An error occurred (ResourceNotFoundException) when calling the GetSecretValue operation" in err.stderr
    aws.sm("create-secret", "--name", name, "--secret-string", "x")
    err = aws.sm_error("create-secret", "--name", name, "--secret-string", "x")
    assert "(ResourceExistsException)" in err.stderr


def test_cli_bad_credentials(coffer, aws):
    env = coffer.cli_env(AWS_ACCESS_KEY_ID="AKIAUNKNOWNUNKNOWN00", AWS_SECRET_ACCESS_KEY="nope")
    err = aws.run("secretsmanager", "list-secrets", env=env, check=False)
    assert err.returncode != 0 and "(UnrecognizedClientException)" in err.stderr, err.stderr
    env = coffer.cli_env(AWS_SECRET_ACCESS_KEY=coffer.secret_key[::-1])
    err = aws.run("secretsmanager", "list-secrets", env=env, check=False)
    assert err.returncode != 0 and "(InvalidSignatureException)" in err.stderr, err.stderr


def test_list_secrets_description_and_all_filters_match_words(aws):
    # The random part starts with "x" so that it never adds a word starting with "d" or "t"
    # (the `all` filter splits the name into words too).
    prefix = f"pytest/words-x{uuid.uuid4().hex[:8]}"
    descriptions = {"s1": "a secret", "s2": "an secret", "s3": "asecret", "s4": "thesecret"}
    for n, d in descriptions.items():
        aws.sm("create-secret", "--name", f"{prefix}/{n}", "--secret-string", "x", "--description", d)
    aws.sm("create-secret", "--name", f"{prefix}/SecretTwo", "--secret-string", "x", "--description", "DescTwo")

    def names(key, value):
        out = aws.sm("list-secrets", "--filters", f"Key=name,Values={prefix}", f"Key={key},Values={value}")
        return {s["Name"].rsplit("/", 1)[1] for s in out["SecretList"]}

    # `name` is a plain prefix match (no word splitting)
    assert names("name", f"{prefix}/s1 x") == set()
    # `description`: every word of the value must prefix some word of the description
    assert names("description", "a secret") == {"s1", "s2"}
    assert names("description", "secret") == {"s1", "s2"}
    # `all`: same word matching over name, description and tags; CamelCase splits words
    assert names("all", "Two") == {"SecretTwo"}
    assert names("all", "d t") == {"SecretTwo"}
