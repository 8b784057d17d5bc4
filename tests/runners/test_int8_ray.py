"""An int8 search on Ray Tune records what it records in process: int8 bytes, the score after post-training
quantization, the float error beside it."""
import pytest
from optuna.trial import TrialState

from tests.runners.test_ray_search import RAY_ONLY_ATTRS, ray_session, run_search  # noqa: F401 (ray_session: fixture)

pytestmark = pytest.mark.slow


def test_an_int8_search_on_ray_records_what_it_records_in_process(tmp_path, tiny_export, isolated_cache):
    on_ray = run_search(tmp_path / "ray", tiny_export, "--trials", "2", "--no-baselines", "--weights", "int8")
    in_process = run_search(tmp_path / "local", tiny_export, "--trials", "2", "--no-baselines", "--weights", "int8",
                            workers=1)
    ran = on_ray.get_trials(states=(TrialState.COMPLETE,))
    assert ran and on_ray.user_attrs["weights"] == "int8"
    for ray_trial, local_trial in zip(ran, in_process.get_trials(states=(TrialState.COMPLETE,)), strict=True):
        assert ray_trial.params == local_trial.params
        assert ray_trial.user_attrs["weight_bytes"] == local_trial.user_attrs["weight_bytes"]
        assert set(ray_trial.user_attrs) - RAY_ONLY_ATTRS == set(local_trial.user_attrs)
        assert ray_trial.values[0] == ray_trial.user_attrs["val_mean_px"] != ray_trial.user_attrs["val_float32_mean_px"]
