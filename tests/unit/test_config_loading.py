"""Every config loader names the file, the field path and the fix, for each way a file can be wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from configs.backup import load_policy as load_backup_policy
from configs.canary import load_policy as load_canary_policy
from configs.ray_cluster import load_cluster_config
from configs.release import load_release
from tasks.errors import InputError

pytestmark = pytest.mark.unit

LOADERS = [load_backup_policy, load_canary_policy, load_cluster_config, load_release]


@pytest.mark.parametrize("loader", LOADERS, ids=lambda f: f.__module__)
@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("name: [unclosed\n", "not valid YAML"),
        ("- a\n- b\n", "not a mapping"),
        ("this_key_does_not_exist_anywhere: 1\n", "this_key_does_not_exist_anywhere"),
    ],
    ids=["broken-yaml", "a-list", "unknown-key"],
)
def test_bad_files_are_input_errors_naming_file_field_and_fix(loader, text, problem, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as caught:
        loader(path)
    err = caught.value
    assert err.source == str(path)
    assert problem in f"{err.field} {err.problem}"
    assert err.fix


@pytest.mark.parametrize("loader", LOADERS, ids=lambda f: f.__module__)
def test_a_missing_file_is_an_input_error(loader, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read the file"):
        loader(tmp_path / "absent.yaml")


def test_unknown_key_fix_says_to_remove_it(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("name: nightly\ndestination: s3://b/p\nretension: {daily: 3}\n")
    with pytest.raises(InputError) as caught:
        load_backup_policy(path)
    assert caught.value.field == "retension" and "remove the key" in caught.value.fix


def test_a_misspelt_required_key_gets_a_did_you_mean(tmp_path: Path) -> None:
    path = tmp_path / "release.yaml"
    path.write_text("registered_modle: iris\ninference_service: iris\nnamespace: demo\n"
                    "destination_prefix: s3://models/iris\ncanary_policy: configs/canary/default.yaml\n")
    with pytest.raises(InputError) as caught:
        load_release(path)
    assert caught.value.field == "registered_modle"
    assert "did you mean 'registered_model'?" in caught.value.fix


