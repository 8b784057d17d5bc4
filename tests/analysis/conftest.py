"""Small studies written through Optuna's API in the search runner's format, on a temporary SQLite file."""
from __future__ import annotations

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

optuna.logging.set_verbosity(optuna.logging.WARNING)

MAX_EPOCHS = 20
DISTRIBUTIONS = {
    "family": CategoricalDistribution(["resnet", "unet", "mobile"]),
    "width": IntDistribution(2, 32),
    "depth": IntDistribution(1, 4),
    "batch_norm": CategoricalDistribution([True, False]),
    "head": CategoricalDistribution(["linear", "sigmoid", "softmax"]),
    "loss": CategoricalDistribution(["mse", "ce"]),
    "expand": IntDistribution(1, 4),
    "optimizer": CategoricalDistribution(["adam", "adamw", "rmsprop", "sgd"]),
    "momentum": FloatDistribution(0.5, 0.99),
    "lr": FloatDistribution(1e-4, 1e-1, log=True),
    "batch_size": IntDistribution(4, 128, log=True),
    "weight_decay": FloatDistribution(1e-6, 1e-2, log=True),
    "sigma": FloatDistribution(0.8, 3.0),
}


def make_params(family="resnet", width=8, depth=2, batch_norm=False, head="linear", optimizer="adam",
                lr=1e-3, batch_size=32, weight_decay=1e-4, sigma=1.5, loss="mse", expand=2, momentum=0.9) -> dict:
    params = dict(family=family, width=width, depth=depth, batch_norm=batch_norm, head=head, optimizer=optimizer,
                  lr=lr, batch_size=batch_size, weight_decay=weight_decay, sigma=sigma)
    # Conditional parameters exist only where they apply, as in the search space.
    if head == "softmax":
        params["loss"] = loss
    if family == "mobile":
        params["expand"] = expand
    if optimizer in ("sgd", "rmsprop"):
        params["momentum"] = momentum
    return params


def add_trial(study: optuna.Study, status: str, kb: float, error: float | None = None, *, baseline: str | None = None,
              epochs: int = MAX_EPOCHS, macs: int | None = None, pck3: float = 0.8, receptive_field: int | None = None,
              **param_overrides) -> None:
    """Add one finished trial: status "ok" (COMPLETE), "stopped" / "oversize" (PRUNED) or "diverged" (FAIL)."""
    params = make_params(**param_overrides)
    weight_bytes = int(round(kb * 1024))
    attrs = dict(family=params["family"], weight_bytes=weight_bytes, params=weight_bytes // 4,
                 macs=macs if macs is not None else weight_bytes * 300, status=status, config=dict(params),
                 receptive_field=[receptive_field or 4 * params["depth"] + 3] * 2)
    if baseline:
        attrs["baseline"] = baseline
    multi = len(study.directions) == 2
    kwargs: dict = {}
    if status in ("ok", "stopped"):
        history = [error * (1 + 0.5 / (e + 1)) for e in range(epochs - 1)] + [error]
        attrs.update(epochs=epochs, train_seconds=1.0 * epochs, val_mean_px=error, val_median_px=0.9 * error,
                     val_pck1=pck3 / 3, val_pck2=pck3 / 2, val_pck3=pck3, val_heatmap_mse=0.01, history=history)
        if status == "ok":
            kwargs = dict(state=TrialState.COMPLETE, values=[error, kb] if multi else [error])
        else:
            kwargs = dict(state=TrialState.PRUNED)
            if not multi:
                kwargs["intermediate_values"] = {e: v for e, v in enumerate(history)}
    elif status == "oversize":
        attrs.update(epochs=0, reason=f"{weight_bytes} bytes > cap")
        kwargs = dict(state=TrialState.PRUNED)
    elif status == "diverged":
        attrs.update(epochs=3, history=[30.0, 50.0], reason="loss is NaN at epoch 3")
        kwargs = dict(state=TrialState.FAIL)
    else:
        raise ValueError(f"status must be ok, stopped, oversize or diverged, got {status!r}")
    distributions = {k: DISTRIBUTIONS[k] for k in params}
    study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions, user_attrs=attrs, **kwargs))


def new_study(tmp_path, multi: bool, name: str = "cones") -> tuple[optuna.Study, str | None]:
    """A study in ``tmp_path/s.db``; ``tmp_path=None`` keeps it in memory (creating a SQLite schema takes ~1 s)."""
    storage = None if tmp_path is None else f"sqlite:///{tmp_path}/s.db"
    study = optuna.create_study(storage=storage, study_name=name,
                                directions=["minimize", "minimize"] if multi else ["minimize"])
    study.set_user_attr("max_bytes", 81920)
    study.set_user_attr("max_epochs", MAX_EPOCHS)
    study.set_user_attr("objectives", ["error", "size"] if multi else ["error"])
    study.set_user_attr("seed", 0)
    study.set_user_attr("data", "synthetic")
    return study, storage


def fill_rich(study: optuna.Study) -> None:
    """36 completed trials over every family, head, batch norm, optimizer and batch size bin, plus the rest."""
    families, heads = ("resnet", "unet", "mobile"), ("linear", "sigmoid", "softmax")
    optimizers, batch_sizes = ("adam", "adamw", "rmsprop", "sgd"), (4, 6, 16, 64, 100, 128)
    for i in range(36):
        family, bn, head = families[i % 3], (i // 3) % 2 == 0, heads[(i // 6) % 3]
        kb = 3 + (i * 29) % 70
        error = {"resnet": 2.0, "unet": 3.0, "mobile": 4.0}[family] + (0.0 if bn else 0.5) + 6 / kb**0.5 + 0.01 * i
        collapsed = head == "sigmoid" and not bn
        add_trial(study, "ok", kb=kb, error=25.0 if collapsed else error, pck3=0.02 if collapsed else 0.8,
                  family=family, batch_norm=bn, head=head, optimizer=optimizers[i % 4],
                  batch_size=batch_sizes[i % 6], width=4 + i % 20, lr=10 ** (-4 + (i % 7) / 3),
                  weight_decay=10 ** (-6 + (i % 5)), sigma=0.8 + (i % 11) * 0.2, receptive_field=10 + (i * 7) % 40)
    add_baselines(study)
    add_trial(study, "stopped", kb=12, error=9.0, head="sigmoid")
    add_trial(study, "oversize", kb=300, width=32, depth=4)
    add_trial(study, "diverged", kb=20, head="sigmoid", optimizer="sgd")


def add_baselines(study: optuna.Study) -> None:
    add_trial(study, "ok", kb=30, error=4.1, baseline="resnet8-linear", batch_norm=False)
    add_trial(study, "ok", kb=30, error=3.2, baseline="resnet8-linear-bn", batch_norm=True)
    add_trial(study, "ok", kb=40, error=2.9, baseline="unet8-softmax-bn", family="unet", head="softmax",
              batch_norm=True)


# Writing trials to SQLite is the slow part, so each study is built once per session; tests only read them.
@pytest.fixture(scope="session", params=[False, True], ids=["single", "multi"])
def multi(request) -> bool:
    return request.param


@pytest.fixture(scope="session")
def rich_study(tmp_path_factory, multi):
    study, storage = new_study(tmp_path_factory.mktemp("rich"), multi)
    fill_rich(study)
    return study, storage


@pytest.fixture(scope="session")
def small_storage(tmp_path_factory, multi) -> str:
    """One SQLite file for the small studies (``thin``, ``hand``), to create the schema once."""
    path = tmp_path_factory.mktemp("small")
    new_study(path, multi, name="empty")
    return path


@pytest.fixture(scope="session")
def thin_study(small_storage, multi):
    """Four trials: a baseline, one stopped, one oversize, one diverged."""
    study, storage = new_study(small_storage, multi, name="thin")
    add_trial(study, "ok", kb=30, error=4.1, baseline="resnet8-linear")
    add_trial(study, "stopped", kb=10, error=8.0, head="sigmoid")
    add_trial(study, "oversize", kb=200, width=32)
    add_trial(study, "diverged", kb=15, head="sigmoid")
    return study, storage


@pytest.fixture(scope="session")
def build():
    """The builders above, for tests that make their own study (conftest is not importable by name)."""
    from types import SimpleNamespace

    return SimpleNamespace(new_study=new_study, add_trial=add_trial, add_baselines=add_baselines)
