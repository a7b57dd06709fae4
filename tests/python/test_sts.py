"""STS GetCallerIdentity (AWS Query protocol) through the aws CLI and boto3."""

import botocore.exceptions
import pytest


def test_cli_get_caller_identity(coffer, aws):
    out = aws.run("sts", "get-caller-identity").json
    assert out == {
        "UserId": coffer.account_id,
        "Account": coffer.account_id,
        "Arn": f"arn:aws:iam::{coffer.account_id}:root",
    }


def test_boto3_get_caller_identity_and_auth_errors(coffer):
    sts = coffer.client("sts")
    ident = sts.get_caller_identity()
    assert ident["Account"] == coffer.account_id
    assert ident["ResponseMetadata"]["HTTPStatusCode"] == 200
    assert ident["ResponseMetadata"]["RequestId"]

    bad = coffer.client("sts", aws_secret_access_key="not-the-secret")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        bad.get_caller_identity()
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403

    unknown = coffer.client("sts", aws_access_key_id="AKIAUNKNOWNUNKNOWN00")
    with pytest.raises(botocore.exceptions.ClientError) as e:
        unknown.get_caller_identity()
    assert e.value.response["Error"]["Code"] == "InvalidClientTokenId"
