"""Fair exploration: the question groups fill up to MIN_COMPLETE full trials, at most every EVERY-th trial."""
from __future__ import annotations

import optuna
from optuna.trial import TrialState

from search_engine.fair_share import (BATCH_ENDS, EVERY, MIN_COMPLETE, FairShare, batch_bin, bin_middle, group_counts,
                                      groups, next_cell)
from search_space.config import HEADS
from studies.attrs import CHOSEN_BY, FAIR


def full_trial(family: str, batch_norm: bool, head: str, epochs: int = 4, **attrs) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(
        value=1.0, params={"family": family, "batch_norm": batch_norm, "head": head},
        distributions={"family": optuna.distributions.CategoricalDistribution(["mobile", "resnet", "unet"]),
                       "batch_norm": optuna.distributions.CategoricalDistribution([False, True]),
                       "head": optuna.distributions.CategoricalDistribution(list(HEADS))},
        user_attrs={"epochs": epochs, **attrs})


def full_counts(families):
    counts = {}
    for family in families:
        for batch_norm in (False, True):
            for head in HEADS:
                for group in groups(family, batch_norm, head):
                    counts[group] = counts.get(group, 0) + MIN_COMPLETE
    for end in BATCH_ENDS:
        counts[("batch", end)] = MIN_COMPLETE
    return counts


def test_the_thinnest_cell_is_chosen_and_none_once_every_group_is_full():
    families = ["resnet", "unet"]
    assert next_cell(families, {}) == ("resnet", False, "linear", None)  # all empty: a fixed order
    counts = full_counts(families)
    assert next_cell(families, counts) is None
    counts[("head-bn", "sigmoid", False)] = MIN_COMPLETE - 1  # sigmoid without batch norm is short
    family, batch_norm, head, batch = next_cell(families, counts)
    assert (batch_norm, head, batch) == (False, "sigmoid", None)  # both batch ends full: TPE picks the batch


def test_a_short_end_of_the_batch_range_gets_a_fixed_batch_size_in_its_bin_and_tpe_picks_the_rest():
    counts = full_counts(["resnet", "unet"])
    counts[("batch", BATCH_ENDS[-1])] = 0
    cell = next_cell(["resnet", "unet"], counts)
    assert cell == (None, None, None, BATCH_ENDS[-1])
    counts[("head-bn", "linear", False)] = 0  # a short head cell goes first, with no batch size fixed
    assert next_cell(["resnet", "unet"], counts) == ("resnet", False, "linear", None)
    counts[("head-bn", "linear", False)] = MIN_COMPLETE
    low, high = BATCH_ENDS[-1]
    assert low <= bin_middle(BATCH_ENDS[-1]) <= high and batch_bin(bin_middle(BATCH_ENDS[-1])) == BATCH_ENDS[-1]
    study = optuna.create_study()
    for number in range(EVERY - 1):  # the sampler's two turns
        study.tell(study.ask(), 1.0)
    study.add_trials([full_trial(f, bn, h, epochs=4) for f in ("resnet", "unet") for bn in (False, True)
                      for h in HEADS for _ in range(MIN_COMPLETE)])
    fair = FairShare(["resnet", "unet"], max_epochs=4)
    study.ask()
    assert fair.maybe_enqueue(study) is not None
    waiting = study.get_trials(states=(TrialState.WAITING,))[0]
    assert waiting.system_attrs["fixed_params"] in ({"batch_size": bin_middle(end)} for end in BATCH_ENDS)
    # While it waits it counts for its end, so the next turn asks for the other end, not the same one twice.
    (end,) = [end for end in BATCH_ENDS if bin_middle(end) == waiting.system_attrs["fixed_params"]["batch_size"]]
    assert group_counts(study.get_trials(), max_epochs=4)[("batch", end)] == 1


def test_only_full_trials_diverged_fair_trials_and_pending_fair_trials_count():
    def ended(state, **attrs):
        return optuna.trial.create_trial(state=state, params={}, distributions={}, user_attrs={
            "config": {"family": "resnet", "batch_norm": False, "head": "sigmoid", "batch_size": 90}, **attrs})

    trials = [full_trial("unet", True, "softmax"), full_trial("unet", True, "softmax", epochs=2),  # not full
              ended(TrialState.PRUNED, stopped_by="reference bar: 41.00 px after epoch 2, more than 3x ..."),
              ended(TrialState.FAIL, status="diverged"),  # a sampled trial's divergence: not the rule's answer
              ended(TrialState.FAIL, status="diverged", **{CHOSEN_BY: FAIR})]
    counts = group_counts(trials, max_epochs=4)
    # A stopped trial's error is not its group's answer; a fair trial that diverged settles it (it collapses).
    assert counts == {("family", "unet"): 1, ("family-bn", "unet", True): 1, ("head-bn", "softmax", True): 1,
                      ("family", "resnet"): 1, ("family-bn", "resnet", False): 1, ("head-bn", "sigmoid", False): 1,
                      ("batch", BATCH_ENDS[-1]): 1}


def test_a_short_study_gets_every_third_trial_from_the_rule_and_the_groups_fill():
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
    fair = FairShare(["resnet", "unet"], max_epochs=4)

    def objective(trial):
        family = trial.suggest_categorical("family", ["mobile", "resnet", "unet"])
        batch_norm = trial.suggest_categorical("batch_norm", [False, True])
        head = trial.suggest_categorical("head", list(HEADS))
        batch_size = trial.suggest_int("batch_size", 4, 128, log=True)
        trial.set_user_attr("epochs", 4)
        # A landscape TPE exploits: U-Net with batch norm and softmax is best by far.
        return ((family != "unet") + (not batch_norm) + (head != "softmax") + abs(batch_size - 20) / 100
                + trial.suggest_float("x", 0, 0.1))

    fair.maybe_enqueue(study)
    study.optimize(objective, n_trials=90, callbacks=[fair])
    chosen = [t.user_attrs.get(CHOSEN_BY) == FAIR for t in study.trials]
    assert sum(chosen) * EVERY <= len(chosen) + EVERY  # at most every third trial
    counts = group_counts(study.trials, max_epochs=4)
    for family in ("resnet", "unet"):
        for batch_norm in (False, True):
            assert counts.get(("family-bn", family, batch_norm), 0) >= MIN_COMPLETE
    for head in HEADS:
        for batch_norm in (False, True):
            assert counts.get(("head-bn", head, batch_norm), 0) >= MIN_COMPLETE
    for end in BATCH_ENDS:  # both ends of the batch-size range, which TPE leaves for the middle
        assert counts.get(("batch", end), 0) >= MIN_COMPLETE
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
