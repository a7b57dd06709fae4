"""What an application does with boto3, including the errors it catches."""

from __future__ import annotations

import datetime
import uuid

import botocore.exceptions
import pytest
from conftest import error_of


def _token() -> str:
    return str(uuid.uuid4())


# --------------------------------------------------------------------------- values and versions


def test_create_get_string_and_binary(sm, coffer, name):
    created = sm.create_secret(Name=name, SecretString="hello")
    assert created["ARN"].startswith(f"arn:aws:secretsmanager:us-east-1:{coffer.account_id}:secret:{name}-")
    got = sm.get_secret_value(SecretId=name)
    assert got["SecretString"] == "hello"
    assert isinstance(got["CreatedDate"], datetime.datetime)
    assert "SecretBinary" not in got

    blob = b"\x00\x01\xfe\xff binary"
    sm.create_secret(Name=name + "-bin", SecretBinary=blob)
    got = sm.get_secret_value(SecretId=name + "-bin")
    assert got["SecretBinary"] == blob and "SecretString" not in got


def test_secret_without_value_then_first_put_gets_awscurrent(sm, name):
    created = sm.create_secret(Name=name)
    assert "VersionId" not in created
    with pytest.raises(sm.exceptions.ResourceNotFoundException) as e:
        sm.get_secret_value(SecretId=name)
    assert error_of(e)[1] == 400
    put = sm.put_secret_value(SecretId=name, SecretString="first")
    assert put["VersionStages"] == ["AWSCURRENT"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "first"


def test_region_comes_from_the_signature(coffer, name):
    west = coffer.client("secretsmanager", region_name="eu-west-1")
    arn = west.create_secret(Name=name, SecretString="x")["ARN"]
    assert arn.startswith(f"arn:aws:secretsmanager:eu-west-1:{coffer.account_id}:secret:")
    assert west.get_secret_value(SecretId=arn)["SecretString"] == "x"


# --------------------------------------------------------------------------- idempotency


def test_client_request_token_becomes_version_id(sm, name):
    t1 = _token()
    created = sm.create_secret(Name=name, SecretString="one", ClientRequestToken=t1)
    assert created["VersionId"] == t1
    t2 = _token()
    assert sm.put_secret_value(SecretId=name, SecretString="two", ClientRequestToken=t2)["VersionId"] == t2
    assert sm.get_secret_value(SecretId=name, VersionId=t1)["SecretString"] == "one"


def test_create_secret_retry_with_same_token_is_idempotent(sm, name):
    """botocore retries a timed-out CreateSecret with the same injected token: that must not fail."""
    t = _token()
    first = sm.create_secret(Name=name, SecretString="v", ClientRequestToken=t)
    again = sm.create_secret(Name=name, SecretString="v", ClientRequestToken=t)
    assert again["ARN"] == first["ARN"] and again["VersionId"] == t
    assert len(sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]) == 1


def test_put_secret_value_same_token_same_value_is_a_noop(sm, name):
    sm.create_secret(Name=name, SecretString="one")
    t = _token()
    first = sm.put_secret_value(SecretId=name, SecretString="two", ClientRequestToken=t)
    again = sm.put_secret_value(SecretId=name, SecretString="two", ClientRequestToken=t)
    assert again["VersionId"] == first["VersionId"] == t
    assert again["VersionStages"] == ["AWSCURRENT"]
    versions = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    assert len(versions) == 2
    # The retry did not shift AWSPREVIOUS onto the current version.
    prev = sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    assert prev["SecretString"] == "one"


def test_put_secret_value_same_token_different_value_is_rejected(sm, name):
    sm.create_secret(Name=name, SecretString="one")
    t = _token()
    sm.put_secret_value(SecretId=name, SecretString="two", ClientRequestToken=t)
    with pytest.raises(sm.exceptions.ResourceExistsException) as e:
        sm.put_secret_value(SecretId=name, SecretString="three", ClientRequestToken=t)
    assert error_of(e)[1] == 400
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "two"


def test_client_request_token_length_is_checked_by_the_server(sm_raw, name):
    with pytest.raises(sm_raw.exceptions.InvalidParameterException) as e:
        sm_raw.create_secret(Name=name, SecretString="x", ClientRequestToken="too-short")
    assert error_of(e)[1] == 400


# --------------------------------------------------------------------------- errors


def test_resource_not_found(sm, name):
    for call in (
        lambda: sm.get_secret_value(SecretId=name),
        lambda: sm.describe_secret(SecretId=name),
        lambda: sm.put_secret_value(SecretId=name, SecretString="x"),
        lambda: sm.restore_secret(SecretId=name),
        lambda: sm.list_secret_version_ids(SecretId=name),
        lambda: sm.delete_secret(SecretId=name),
    ):
        with pytest.raises(sm.exceptions.ResourceNotFoundException) as e:
            call()
        code, status, message = error_of(e)
        assert (code, status) == ("ResourceNotFoundException", 400)
        assert message == "Secrets Manager can't find the specified secret."


def test_missing_staging_label_is_resource_not_found(sm, name):
    sm.create_secret(Name=name, SecretString="x")
    with pytest.raises(sm.exceptions.ResourceNotFoundException) as e:
        sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    assert error_of(e)[1] == 400
    with pytest.raises(sm.exceptions.ResourceNotFoundException):
        sm.get_secret_value(SecretId=name, VersionId=_token())


def test_resource_exists(sm, name):
    sm.create_secret(Name=name, SecretString="x")
    with pytest.raises(sm.exceptions.ResourceExistsException) as e:
        sm.create_secret(Name=name, SecretString="y")
    code, status, message = error_of(e)
    assert status == 400
    assert message == f"The operation failed because the secret {name} already exists."


def test_invalid_request_on_secret_scheduled_for_deletion(sm, name):
    sm.create_secret(Name=name, SecretString="x")
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    for call in (
        lambda: sm.get_secret_value(SecretId=name),
        lambda: sm.put_secret_value(SecretId=name, SecretString="y"),
        lambda: sm.tag_resource(SecretId=name, Tags=[{"Key": "k", "Value": "v"}]),
        lambda: sm.create_secret(Name=name, SecretString="z"),
    ):
        with pytest.raises(sm.exceptions.InvalidRequestException) as e:
            call()
        assert error_of(e)[1] == 400


def test_invalid_request_stage_not_on_version(sm, name):
    v1 = sm.create_secret(Name=name, SecretString="one")["VersionId"]
    sm.put_secret_value(SecretId=name, SecretString="two")
    with pytest.raises(sm.exceptions.InvalidRequestException) as e:
        sm.get_secret_value(SecretId=name, VersionId=v1, VersionStage="AWSCURRENT")
    assert error_of(e)[1] == 400


@pytest.mark.parametrize("bad", ["Inv Name", " Inv*Name? ", "has#hash"])
def test_validation_exception_for_invalid_names(sm, bad):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.create_secret(Name=bad, SecretString="x")
    code, status, _ = error_of(e)
    assert (code, status) == ("ValidationException", 400)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.describe_secret(SecretId=bad)
    assert error_of(e)[:2] == ("ValidationException", 400)


def test_invalid_parameter(sm, name):
    sm.create_secret(Name=name, SecretString="x")
    for kwargs in (
        {"RecoveryWindowInDays": 3},
        {"RecoveryWindowInDays": 31},
        {"RecoveryWindowInDays": 7, "ForceDeleteWithoutRecovery": True},
    ):
        with pytest.raises(sm.exceptions.InvalidParameterException) as e:
            sm.delete_secret(SecretId=name, **kwargs)
        assert error_of(e)[1] == 400
    assert "DeletedDate" not in sm.describe_secret(SecretId=name)


def test_string_and_binary_together_is_rejected(sm, name):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.create_secret(Name=name, SecretString="x", SecretBinary=b"x")
    code, status, _ = error_of(e)
    assert status == 400 and code in ("InvalidParameterException", "InvalidRequestException")


def test_random_password_too_long_is_rejected(sm_raw):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm_raw.get_random_password(PasswordLength=4097)
    code, status, _ = error_of(e)
    assert status == 400 and code in ("ValidationException", "InvalidParameterException")


# --------------------------------------------------------------------------- deletion lifecycle


def test_force_delete_of_unknown_secret_succeeds(sm, name):
    out = sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    assert out["Name"] == name


def _follow_server_clock(sm, skewed_signing, offset_seconds: float) -> None:
    """After moving the dev clock, sign with the wall clock if the server accepts that, else follow it."""
    try:
        sm.list_secrets(MaxResults=1)
    except botocore.exceptions.ClientError as e:
        if error_of(e)[0] != "InvalidSignatureException":
            raise
        skewed_signing(offset_seconds)


def test_recovery_window_ends_and_secret_is_purged(private_coffer, skewed_signing, name):
    sm = private_coffer.client("secretsmanager")
    arn = sm.create_secret(Name=name, SecretString="x")["ARN"]
    sm.delete_secret(SecretId=name, RecoveryWindowInDays=7)
    status, body = private_coffer.http_post("/v1/sys/coffer/clock", {"advance_seconds": 6 * 86400})
    assert status == 200, body
    _follow_server_clock(sm, skewed_signing, 6 * 86400)
    assert "DeletedDate" in sm.describe_secret(SecretId=name)  # still recoverable on day 6
    status, body = private_coffer.http_post("/v1/sys/coffer/clock", {"advance_seconds": 86400 + 60})
    assert status == 200, body
    _follow_server_clock(sm, skewed_signing, 7 * 86400 + 60)
    with pytest.raises(sm.exceptions.ResourceNotFoundException):
        sm.describe_secret(SecretId=arn)
    assert sm.create_secret(Name=name, SecretString="new")["ARN"] != arn


def test_reset_endpoint_wipes_data(private_coffer, name):
    sm = private_coffer.client("secretsmanager")
    sm.create_secret(Name=name, SecretString="x")
    status, _ = private_coffer.http_post("/moto-api/reset")
    assert status == 200
    with pytest.raises(sm.exceptions.ResourceNotFoundException):
        sm.get_secret_value(SecretId=name)
    # the root access key survives the reset
    sm.create_secret(Name=name, SecretString="y")


# --------------------------------------------------------------------------- authentication


def test_unknown_access_key(coffer):
    c = coffer.client(aws_access_key_id="AKIAUNKNOWNUNKNOWN00", aws_secret_access_key="whatever")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.list_secrets()
    code, status, message = error_of(e)
    assert (code, status) == ("UnrecognizedClientException", 400)
    assert message == "The security token included in the request is invalid."


def test_wrong_secret_key(coffer):
    c = coffer.client(aws_secret_access_key=coffer.secret_key + "x")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        c.get_secret_value(SecretId="anything")
    code, status, message = error_of(e)
    assert (code, status) == ("InvalidSignatureException", 400)
    assert message.startswith("The request signature we calculated does not match the signature you provided.")


def test_signature_from_the_past_is_rejected(coffer, skewed_signing):
    skewed_signing(-3600)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        coffer.client().list_secrets()
    code, status, message = error_of(e)
    assert (code, status) == ("InvalidSignatureException", 400)
    assert "Signature expired" in message


def test_request_id_header(sm):
    meta = sm.get_random_password()["ResponseMetadata"]
    uuid.UUID(meta["RequestId"])
    assert meta["HTTPHeaders"]["content-type"].startswith("application/x-amz-json-1.1")
