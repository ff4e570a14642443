"""Fan-out settings: which address ray.init gets (never the dashboard URL), which variables reach the Ray
workers (never a secret through runtime_env), and the one-namespace policies a fleet backup writes with."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from configs.backup import BackupPolicy
from configs.release import ExecutionConfig
from tasks import fleet
from tasks.errors import InputError

pytestmark = pytest.mark.unit


def test_execution_refuses_the_dashboard_url_as_ray_address():
    with pytest.raises(ValidationError, match=r"dashboard .*GCS address"):
        ExecutionConfig(task_runner="ray", ray_address="http://127.0.0.1:8265")
    assert ExecutionConfig(task_runner="ray", ray_address="127.0.0.1:6379").ray_address == "127.0.0.1:6379"
    assert ExecutionConfig(task_runner="ray", ray_address="ray://head:10001").ray_address == "ray://head:10001"


@pytest.mark.parametrize("name", ["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "KAIOPS_BACKUP_KEY", "GH_TOKEN",
                                  "DB_PASSWORD", "GOOGLE_APPLICATION_CREDENTIALS"])
def test_execution_refuses_credentials_in_ray_env(name):
    with pytest.raises(ValidationError, match="ray_secret_blocks"):
        ExecutionConfig(task_runner="ray", ray_env=[name])


def test_execution_takes_secrets_as_prefect_blocks_and_plain_settings_as_env():
    cfg = ExecutionConfig(task_runner="ray", ray_env=["AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION"],
                          ray_secret_blocks={"AWS_SECRET_ACCESS_KEY": "backup-s3-secret"})
    assert cfg.ray_secret_blocks == {"AWS_SECRET_ACCESS_KEY": "backup-s3-secret"}
    with pytest.raises(ValidationError, match="Prefect block name"):
        ExecutionConfig(ray_secret_blocks={"X": "Not A Block"})
    with pytest.raises(ValidationError, match="environment variable name"):
        ExecutionConfig(ray_env=["1BAD"])


def test_ray_init_address_prefers_config_then_kaiops_variable():
    env = {"RAY_ADDRESS": "http://127.0.0.1:8265", fleet.RAY_INIT_ADDRESS_ENV: "127.0.0.1:6379"}
    assert fleet.ray_init_address("10.0.0.1:6379", env) == "10.0.0.1:6379"
    assert fleet.ray_init_address(None, env) == "127.0.0.1:6379"
    assert fleet.ray_init_address(None, {}) is None  # a local Ray for the run
    assert fleet.ray_init_address(None, {"RAY_ADDRESS": "127.0.0.1:6379"}) is None  # ray.init() reads it itself


def test_ray_init_address_refuses_an_inherited_dashboard_url():
    # what `kaiops sandbox env` exports: ray.init() would read it and fail with an obscure error
    with pytest.raises(InputError) as err:
        fleet.ray_init_address(None, {"RAY_ADDRESS": "http://127.0.0.1:8265"})
    assert err.value.field == "RAY_ADDRESS" and "KAIOPS_RAY_INIT_ADDRESS" in str(err.value)
    with pytest.raises(InputError, match="dashboard URL"):
        fleet.ray_init_address(None, {fleet.RAY_INIT_ADDRESS_ENV: "https://ray.example.com"})


def test_ray_runtime_env_copies_only_named_variables():
    env = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_SECRET_ACCESS_KEY": "s"}
    assert fleet.ray_runtime_env(["AWS_ENDPOINT_URL"], env) == {"env_vars": {"AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}}
    assert fleet.ray_runtime_env([], env) is None
    with pytest.raises(InputError, match="AWS_DEFAULT_REGION"):
        fleet.ray_runtime_env(["AWS_DEFAULT_REGION"], env)


def test_namespace_policy_is_one_namespace_under_its_own_prefix():
    pol = BackupPolicy(name="nightly", destination="s3://bucket/nightly/", create_bucket=True,
                       include_cluster_resources=True, namespaces=["a", "b"])
    one = fleet.namespace_policy(pol, "team-a")
    assert one.namespaces == ["team-a"] and one.destination == "s3://bucket/nightly/team-a"
    assert one.include_cluster_resources is False and one.create_bucket is False
    assert (one.name, one.retention, one.encryption_key_env) == (pol.name, pol.retention, pol.encryption_key_env)
    with pytest.raises(InputError) as err:
        fleet.namespace_policy(pol, "Team_A")
    assert err.value.field == "namespaces"


def test_failed_rows_have_the_backup_row_shape():
    row = fleet.failed_row("gone", fleet.NamespaceOutcome.MISSING, "namespace not found")
    assert row["outcome"] == "missing" and row["backup_id"] is None and row["objects"] == 0
