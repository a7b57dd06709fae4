"""Parameter Store with boto3 and the real `aws` CLI pointed at Coffer."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from conftest import error_of


@pytest.fixture(scope="session")
def ssm(coffer):
    return coffer.client("ssm")


@pytest.fixture
def path() -> str:
    """A parameter hierarchy unique to this test."""
    return f"/pytest/{uuid.uuid4().hex[:8]}"


def test_string_string_list_and_secure_string(ssm, path):
    assert ssm.put_parameter(Name=f"{path}/host", Value="db.local", Type="String")["Version"] == 1
    ssm.put_parameter(Name=f"{path}/hosts", Value="a,b,c", Type="StringList")
    ssm.put_parameter(Name=f"{path}/password", Value="hunter2-canary", Type="SecureString")

    got = ssm.get_parameter(Name=f"{path}/host")["Parameter"]
    assert got["Value"] == "db.local" and got["Type"] == "String" and got["DataType"] == "text"
    assert got["ARN"].endswith(f":parameter{path}/host")
    assert ssm.get_parameter(Name=f"{path}/hosts")["Parameter"]["Value"] == "a,b,c"

    enc = ssm.get_parameter(Name=f"{path}/password")["Parameter"]
    assert enc["Type"] == "SecureString" and enc["Value"] != "hunter2-canary"
    dec = ssm.get_parameter(Name=f"{path}/password", WithDecryption=True)["Parameter"]
    assert dec["Value"] == "hunter2-canary"

    both = ssm.get_parameters(Names=[f"{path}/host", f"{path}/missing"])
    assert [p["Name"] for p in both["Parameters"]] == [f"{path}/host"]
    assert both["InvalidParameters"] == [f"{path}/missing"]

    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name=f"{path}/missing")
    assert error_of(e) == ("ParameterNotFound", 400, f"Parameter {path}/missing not found.")


def test_by_path_with_paginator(ssm, path):
    for i in range(5):
        ssm.put_parameter(Name=f"{path}/a/p{i}", Value=f"v{i}", Type="String")
    ssm.put_parameter(Name=f"{path}/a/deeper/x", Value="x", Type="String")
    pages = ssm.get_paginator("get_parameters_by_path").paginate(Path=f"{path}/a", PaginationConfig={"PageSize": 2})
    names = sorted(p["Name"] for page in pages for p in page["Parameters"])
    assert names == [f"{path}/a/p{i}" for i in range(5)]
    pages = ssm.get_paginator("get_parameters_by_path").paginate(Path=f"{path}/a", Recursive=True)
    assert len([p for page in pages for p in page["Parameters"]]) == 6


def test_history_and_labels(ssm, path):
    name = f"{path}/versioned"
    for i in range(3):
        ssm.put_parameter(Name=name, Value=f"v{i}", Type="String", Overwrite=True, Description=f"d{i}")
    out = ssm.label_parameter_version(Name=name, ParameterVersion=2, Labels=["stable", "9invalid"])
    assert out["InvalidLabels"] == ["9invalid"] and out["ParameterVersion"] == 2
    hist = ssm.get_parameter_history(Name=name)["Parameters"]
    assert [h["Version"] for h in hist] == [1, 2, 3]
    assert hist[1]["Labels"] == ["stable"] and hist[1]["Description"] == "d1"
    by_label = ssm.get_parameter(Name=f"{name}:stable")["Parameter"]
    assert by_label["Value"] == "v1" and by_label["Selector"] == ":stable"
    assert ssm.get_parameter(Name=f"{name}:1")["Parameter"]["Value"] == "v0"
    removed = ssm.unlabel_parameter_version(Name=name, ParameterVersion=2, Labels=["stable"])
    assert removed["RemovedLabels"] == ["stable"]


def test_reference_to_a_secrets_manager_secret(coffer, ssm, sm, path):
    secret = f"pytest{path}/secret"
    sm.create_secret(Name=secret, SecretString='{"user":"app"}')
    p = ssm.get_parameter(Name=f"/aws/reference/secretsmanager/{secret}", WithDecryption=True)["Parameter"]
    assert p["Value"] == '{"user":"app"}' and p["Type"] == "SecureString"
    assert json.loads(p["SourceResult"])["Name"] == secret
    with pytest.raises(ClientError) as e:
        ssm.get_parameter(Name=f"/aws/reference/secretsmanager/{secret}")
    assert error_of(e)[0] == "ValidationException"


@pytest.mark.cli
def test_cli_put_get_by_path_and_reference(aws, path):
    aws.run("ssm", "put-parameter", "--name", f"{path}/cli/s", "--value", "plain", "--type", "String")
    aws.run("ssm", "put-parameter", "--name", f"{path}/cli/pw", "--value", "cli-canary", "--type", "SecureString")
    got = aws.run("ssm", "get-parameter", "--name", f"{path}/cli/pw", "--with-decryption").json
    assert got["Parameter"]["Value"] == "cli-canary"
    listed = aws.run("ssm", "get-parameters-by-path", "--path", f"{path}/cli", "--with-decryption").json
    assert sorted(p["Value"] for p in listed["Parameters"]) == ["cli-canary", "plain"]
    hist = aws.run("ssm", "get-parameter-history", "--name", f"{path}/cli/s").json
    assert hist["Parameters"][0]["Version"] == 1
    aws.run("secretsmanager", "create-secret", "--name", f"pytest{path}/cli-secret", "--secret-string", "sv")
    ref = aws.run(
        "ssm", "get-parameter", "--name", f"/aws/reference/secretsmanager/pytest{path}/cli-secret", "--with-decryption"
    ).json
    assert ref["Parameter"]["Value"] == "sv"
    err = aws.run("ssm", "get-parameter", "--name", f"{path}/cli/none", check=False)
    assert err.returncode != 0 and "ParameterNotFound" in err.stderr
