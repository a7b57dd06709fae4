"""pytest plugin loaded by scripts/conformance.sh (`-p coffer_moto_plugin`) into moto's test run.

moto's `@mock_aws` normally replaces AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY with
FOOBARKEY/FOOBARSECRET for the duration of each test ("mock_credentials", on by default in
moto 5.2.3: moto/core/models.py MockAWS._mock_env_variables). moto's own server does not verify
signatures, so that never matters there; Coffer verifies SigV4 against the dev access key it was
started with (`--dev-access-key testing:testing`). Turning the credential mock off makes the
clients in moto's tests sign with the credentials from the environment (testing/testing), as
CONFORMANCE.md §2 intends. Nothing else in moto's harness changes: server mode still points
every boto3 client at TEST_SERVER_MODE_ENDPOINT and calls POST /moto-api/reset around each test.
"""

from moto.core.config import default_user_config

default_user_config["core"]["mock_credentials"] = False


def pytest_collection_modifyitems(config, items):
    """Deselect the exact test ids listed in $COFFER_CONFORMANCE_DESELECT (one per line).

    pytest's own --deselect matches node-id prefixes, which would also drop every test whose name
    merely starts with the given one.
    """
    import os

    wanted = {line.strip() for line in os.environ.get("COFFER_CONFORMANCE_DESELECT", "").splitlines() if line.strip()}
    if not wanted:
        return
    keep, drop = [], []
    for item in items:
        (drop if item.nodeid in wanted or item.nodeid.split("[", 1)[0] in wanted else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
