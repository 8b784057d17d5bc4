"""The hand designs run beside the search: one at a time, taking turns with the sampler, resumable."""
import optuna
from optuna.trial import TrialState

from search_engine.reference import ReferenceQueue, enqueue_hand_designs
from search_space.baselines import hand_designs
from search_space.space import SearchSpace
from studies.attrs import BASELINE_ATTR

SPACE = SearchSpace.for_cap(80 * 1024)


def run_one(study: optuna.Study, queue: ReferenceQueue) -> str | None:
    """Take the queue's turn, then ask and finish one trial as a runner does; the hand design's name or None."""
    queue.maybe_enqueue(study)
    trial = study.ask()
    study.tell(trial, 1.0)
    return study.trials[-1].user_attrs.get(BASELINE_ATTR)


def test_hand_designs_and_sampled_trials_take_turns_until_the_reference_is_done():
    study = optuna.create_study()
    assert enqueue_hand_designs(study, SPACE, all_now=False)["pending"] == 8  # none queued up front
    queue = ReferenceQueue(SPACE)
    ran = [run_one(study, queue) for _ in range(20)]
    assert ran[:16:2] == list(hand_designs()) and ran[1:16:2] == [None] * 8
    assert ran[16:] == [None] * 4  # the reference done: every trial is the sampler's


def test_with_a_hand_design_running_the_next_worker_gets_a_sampled_trial():
    study = optuna.create_study()
    queue = ReferenceQueue(SPACE)
    queue.maybe_enqueue(study)
    first, second = study.ask(), (queue.maybe_enqueue(study), study.ask())[1]
    assert BASELINE_ATTR in study.trials[first.number].user_attrs
    assert BASELINE_ATTR not in study.trials[second.number].user_attrs
    assert queue.maybe_enqueue(study) is None  # still one running: no second hand design at once
    study.tell(first, 1.0)
    assert queue.maybe_enqueue(study) == list(hand_designs())[1]


def test_a_resumed_search_queues_the_designs_it_has_not_run():
    study = optuna.create_study()
    queue = ReferenceQueue(SPACE)
    for _ in range(6):
        run_one(study, queue)
    again = ReferenceQueue(SPACE)  # a new run of the same study: the study says what ran
    assert again.maybe_enqueue(study) == list(hand_designs())[3]
    waiting = [t for t in study.trials if t.state == TrialState.WAITING]
    assert len(waiting) == 1 and again.maybe_enqueue(study) is None


def test_no_hand_design_is_queued_once_the_study_reached_its_target():
    study = optuna.create_study()
    queue = ReferenceQueue(SPACE, target=2)
    run_one(study, queue)
    run_one(study, queue)
    queue(study, study.trials[-1])  # the optimize callback after the last trial
    assert not [t for t in study.trials if t.state == TrialState.WAITING]
