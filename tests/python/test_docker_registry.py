"""The Docker-registry scenario from the Parameter Store + KMS issue, with the real clients:
the registry username is a String parameter, the password a Secrets Manager secret encrypted
under a customer KMS key; both are read back; disabling the key makes the password unreadable
with AWS's error, and enabling it restores access."""

import uuid

import botocore.exceptions
import pytest


def test_docker_registry_credentials_under_a_customer_key(coffer, aws):
    suffix = uuid.uuid4().hex[:8]
    user_param = f"/ci/registry-{suffix}/username"
    secret_name = f"ci/registry-{suffix}/password"

    key = aws.run("kms", "create-key", "--description", "registry credentials").json["KeyMetadata"]
    aws.run("kms", "create-alias", "--alias-name", f"alias/registry-{suffix}", "--target-key-id", key["KeyId"])
    aws.run("ssm", "put-parameter", "--name", user_param, "--type", "String", "--value", "ci-bot")
    aws.sm("create-secret", "--name", secret_name, "--secret-string", "hunter2-registry",
           "--kms-key-id", f"alias/registry-{suffix}")

    got_user = aws.run("ssm", "get-parameter", "--name", user_param).json["Parameter"]
    assert got_user["Value"] == "ci-bot" and got_user["Type"] == "String"
    assert aws.sm("get-secret-value", "--secret-id", secret_name)["SecretString"] == "hunter2-registry"
    described = aws.sm("describe-secret", "--secret-id", secret_name)
    assert described["KmsKeyId"] in (f"alias/registry-{suffix}", key["Arn"], key["KeyId"])

    # The key governs access: disabled -> the password read fails with AWS's error.
    aws.run("kms", "disable-key", "--key-id", key["KeyId"])
    sm = coffer.client("secretsmanager")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.get_secret_value(SecretId=secret_name)
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # AWS: "Secrets Manager can't decrypt the secret value: ... is disabled ... DisabledException".
    assert e.value.response["Error"]["Code"] == "DecryptionFailure"
    assert "disabled" in e.value.response["Error"]["Message"]
    assert "hunter2" not in str(e.value)
    # The username is not under that key and stays readable.
    assert aws.run("ssm", "get-parameter", "--name", user_param).json["Parameter"]["Value"] == "ci-bot"

    aws.run("kms", "enable-key", "--key-id", key["KeyId"])
    assert sm.get_secret_value(SecretId=secret_name)["SecretString"] == "hunter2-registry"


def test_secure_string_parameter_under_the_aws_managed_key(coffer, aws):
    name = f"/ci/token-{uuid.uuid4().hex[:8]}"
    aws.run("ssm", "put-parameter", "--name", name, "--type", "SecureString", "--value", "s3cret-token")
    raw = aws.run("ssm", "get-parameter", "--name", name).json["Parameter"]
    assert raw["Type"] == "SecureString" and raw["Value"] != "s3cret-token"
    dec = aws.run("ssm", "get-parameter", "--name", name, "--with-decryption").json["Parameter"]
    assert dec["Value"] == "s3cret-token"
    alias = aws.run("kms", "describe-key", "--key-id", "alias/aws/ssm").json["KeyMetadata"]
    assert alias["KeyManager"] == "AWS"
