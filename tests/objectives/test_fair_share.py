"""Fair exploration: the question groups fill up to MIN_COMPLETE full trials, at most every EVERY-th trial."""
from __future__ import annotations

import optuna
from optuna.trial import TrialState

from objectives.fair_share import CHOSEN_BY, EVERY, FAIR, MIN_COMPLETE, FairShare, group_counts, groups, next_cell
from search_space.config import HEADS


def full_trial(family: str, batch_norm: bool, head: str, epochs: int = 4, **attrs) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(
        value=1.0, params={"family": family, "batch_norm": batch_norm, "head": head},
        distributions={"family": optuna.distributions.CategoricalDistribution(["mobile", "resnet", "unet"]),
                       "batch_norm": optuna.distributions.CategoricalDistribution([False, True]),
                       "head": optuna.distributions.CategoricalDistribution(list(HEADS))},
        user_attrs={"epochs": epochs, **attrs})


def test_the_thinnest_cell_is_chosen_and_none_once_every_group_is_full():
    families = ["resnet", "unet"]
    assert next_cell(families, {}) == ("resnet", False, "linear")  # all empty: the first in a fixed order
    counts = {}
    for family in families:
        for batch_norm in (False, True):
            for head in HEADS:
                for group in groups(family, batch_norm, head):
                    counts[group] = counts.get(group, 0) + MIN_COMPLETE
    assert next_cell(families, counts) is None
    counts[("head-bn", "sigmoid", False)] = MIN_COMPLETE - 1  # sigmoid without batch norm is short
    family, batch_norm, head = next_cell(families, counts)
    assert (batch_norm, head) == (False, "sigmoid")


def test_only_full_settled_and_pending_fair_trials_count():
    def pruned(**attrs):
        return optuna.trial.create_trial(state=TrialState.PRUNED, params={}, distributions={}, user_attrs={
            "config": {"family": "resnet", "batch_norm": False, "head": "sigmoid"}, **attrs})

    trials = [full_trial("unet", True, "softmax"), full_trial("unet", True, "softmax", epochs=2),  # not full
              pruned(), pruned(stopped_by="reference bar: 41.00 px after epoch 2, more than 3x ...")]
    counts = group_counts(trials, max_epochs=4)
    # Successive halving's stop says nothing about the group; the reference bar's settles it (it collapsed).
    assert counts == {("family", "unet"): 1, ("family-bn", "unet", True): 1, ("head-bn", "softmax", True): 1,
                      ("family", "resnet"): 1, ("family-bn", "resnet", False): 1, ("head-bn", "sigmoid", False): 1}


def test_a_short_study_gets_every_third_trial_from_the_rule_and_the_groups_fill():
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    fair = FairShare(["resnet", "unet"], max_epochs=4)

    def objective(trial):
        family = trial.suggest_categorical("family", ["mobile", "resnet", "unet"])
        batch_norm = trial.suggest_categorical("batch_norm", [False, True])
        head = trial.suggest_categorical("head", list(HEADS))
        trial.set_user_attr("epochs", 4)
        # A landscape TPE exploits: U-Net with batch norm and softmax is best by far.
        return (family != "unet") + (not batch_norm) + (head != "softmax") + trial.suggest_float("x", 0, 0.1)

    fair.maybe_enqueue(study)
    study.optimize(objective, n_trials=60, callbacks=[fair])
    chosen = [t.user_attrs.get(CHOSEN_BY) == FAIR for t in study.trials]
    assert sum(chosen) * EVERY <= len(chosen) + EVERY  # at most every third trial
    counts = group_counts(study.trials, max_epochs=4)
    for family in ("resnet", "unet"):
        for batch_norm in (False, True):
            assert counts.get(("family-bn", family, batch_norm), 0) >= MIN_COMPLETE
    for head in HEADS:
        for batch_norm in (False, True):
            assert counts.get(("head-bn", head, batch_norm), 0) >= MIN_COMPLETE
    assert 0 < sum(chosen)
    # Once the groups are full the rule stops asking: the last trials are all TPE's.
    assert not any(chosen[-10:])


def test_the_first_two_sampled_trials_are_the_samplers_and_the_third_is_fair():
    study = optuna.create_study()
    fair = FairShare(["resnet", "unet"], max_epochs=4)
    chosen = []
    for _ in range(6):
        fair.maybe_enqueue(study)
        trial = study.ask()
        chosen.append(study.trials[-1].user_attrs.get(CHOSEN_BY))
        study.tell(trial, 1.0)
    assert chosen == [None, None, FAIR, None, None, FAIR]
