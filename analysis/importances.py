"""How much each searched parameter matters for the validation error: Optuna's PED-ANOVA and fANOVA.

Parameters present in every trial are rated together over all completed trials. A conditional parameter
(``loss``, ``expand``, ``momentum``) exists only where it applies, so it is rated over those trials alone, with
the always-present parameters alongside, and only its own share is kept.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import optuna
from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator, get_param_importances
from optuna.search_space import intersection_search_space
from optuna.trial import TrialState

from studies.reader import trial_error

MIN_TRIALS = 10  # fewer completed trials than this and the ratings are noise


@dataclass(frozen=True)
class Importances:
    n_complete: int
    # evaluator name -> {parameter: importance}; empty when there were too few trials
    by_evaluator: dict[str, dict[str, float]] = field(default_factory=dict)
    # conditional parameter -> number of completed trials it was rated over
    conditional: dict[str, int] = field(default_factory=dict)
    # parameter -> why it has no rating (by one evaluator or both)
    unrated: dict[str, str] = field(default_factory=dict)

    @property
    def enough(self) -> bool:
        return bool(self.by_evaluator)


def evaluators(seed: int = 0) -> dict:
    return {"PED-ANOVA": PedAnovaImportanceEvaluator(), "fANOVA": FanovaImportanceEvaluator(seed=seed)}


def param_importances(study: optuna.Study, min_trials: int = MIN_TRIALS, seed: int = 0) -> Importances:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < min_trials:
        return Importances(n_complete=len(complete))

    with warnings.catch_warnings():
        # PED-ANOVA warns that it rates parameters for low target values: low error is what we want.
        warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes", category=UserWarning)
        return _evaluate(study, complete, min_trials, seed)


def _evaluate(study: optuna.Study, complete: list, min_trials: int, seed: int) -> Importances:
    common = sorted(intersection_search_space(complete))
    seen = sorted({name for t in complete for name in t.params} - set(common))
    by_evaluator = {}
    conditional, unrated = {}, {}
    for name, evaluator in evaluators(seed).items():
        scores = get_param_importances(study, evaluator=evaluator, params=common, target=trial_error)
        for param in seen:
            n = sum(param in t.params for t in complete)
            if n < min_trials:
                unrated[param] = f"in {n} completed trials, need {min_trials}"
                continue
            try:
                within = get_param_importances(study, evaluator=evaluator, params=common + [param], target=trial_error)
            except ValueError:
                # Its range differs between trials (width and depth have per-family ranges): this evaluator
                # cannot rate it. PED-ANOVA can; fANOVA cannot.
                why = f"{name} cannot: its range differs between trials"
                unrated[param] = f"{unrated[param]}; {why}" if param in unrated else why
                continue
            conditional[param] = n
            scores[param] = within[param]
        by_evaluator[name] = {k: float(v) for k, v in scores.items()}
    return Importances(n_complete=len(complete), by_evaluator=by_evaluator, conditional=conditional, unrated=unrated)
