"""A fresh study's first sampled trials are the product's starting point and its deeper neighbour; once each, and
only where the cap allows them."""
import optuna
from optuna.trial import TrialState

from search_engine.queues import StartingPoint
from search_engine.reference import ReferenceQueue
from search_space.size import weight_bytes
from search_space.space import SearchSpace, trial_params
from search_space.start import STARTING_POINT, starting_points
from studies.attrs import BASELINE_ATTR, CHOSEN_BY, STARTING

SPACE = SearchSpace.for_cap(80 * 1024)


def take_turns(study: optuna.Study, queues) -> optuna.trial.Trial:
    for queue in queues:
        queue.maybe_enqueue(study)
    return study.ask()


def test_with_two_workers_one_trains_a_hand_design_the_other_the_starting_point_then_the_sampler_goes_on():
    study = optuna.create_study()
    queues = (ReferenceQueue(SPACE), StartingPoint(SPACE))
    first, second = take_turns(study, queues), take_turns(study, queues)  # two workers ask at once
    assert BASELINE_ATTR in study.trials[first.number].user_attrs
    start = study.trials[second.number]
    assert start.user_attrs[CHOSEN_BY] == STARTING
    assert start.system_attrs["fixed_params"] == trial_params(STARTING_POINT)  # what the trial will suggest
    study.tell(second, 1.0)
    for cfg in starting_points(SPACE)[1:]:  # the worker that trained the start takes its neighbour next
        neighbour = take_turns(study, queues)
        assert study.trials[neighbour.number].system_attrs["fixed_params"] == trial_params(cfg)
        study.tell(neighbour, 1.0)
    last = take_turns(study, queues)
    assert CHOSEN_BY not in study.trials[last.number].user_attrs  # the sampler's: each start is taken once
    assert BASELINE_ATTR not in study.trials[last.number].user_attrs  # a hand design still runs beside


def test_the_neighbour_is_the_start_one_block_deeper_as_wide_as_the_cap_allows():
    start, deeper = starting_points(SPACE)
    assert start == STARTING_POINT and deeper.depth == STARTING_POINT.depth + 1
    assert deeper.replace(depth=STARTING_POINT.depth, width=STARTING_POINT.width) == STARTING_POINT  # only shape
    assert weight_bytes(deeper) <= SPACE.max_bytes < weight_bytes(deeper.replace(width=deeper.width + 1))


def test_once_the_sampler_has_a_trial_the_remaining_starting_points_are_dropped():
    study = optuna.create_study()
    assert StartingPoint(SPACE).maybe_enqueue(study) is True
    study.tell(study.ask(), 1.0)
    study.tell(study.ask(), 2.0)  # e.g. a worker asked while the start was queued for the other
    assert StartingPoint(SPACE).maybe_enqueue(study) is False


def test_a_continued_study_that_holds_sampled_trials_gets_no_starting_point():
    study = optuna.create_study()
    study.tell(study.ask(), 2.0)  # a sampled trial of an earlier run (one with --no-starting-point, say)
    assert StartingPoint(SPACE).maybe_enqueue(study) is False
    assert not [t for t in study.trials if t.state == TrialState.WAITING]


def test_under_a_cap_the_deeper_design_does_not_fit_only_the_start_is_tried():
    start, deeper = starting_points(SPACE)
    assert weight_bytes(start) < weight_bytes(deeper.replace(width=4))  # at its narrowest still over the cap below
    assert starting_points(SearchSpace.for_cap(weight_bytes(deeper.replace(width=4)) - 1)) == [STARTING_POINT]


def test_under_a_cap_the_start_does_not_fit_the_sampler_starts():
    small = SearchSpace.for_cap(weight_bytes(STARTING_POINT) - 1)
    assert starting_points(small) == []
    study = optuna.create_study()
    assert StartingPoint(small).maybe_enqueue(study) is False and not study.trials


def test_with_the_hand_designs_queued_first_it_waits_for_them():
    study = optuna.create_study()
    study.enqueue_trial(trial_params(STARTING_POINT.replace(batch_norm=False)), user_attrs={BASELINE_ATTR: "x"})
    assert StartingPoint(SPACE).maybe_enqueue(study) is False  # a hand design waits: it goes first
    study.tell(study.ask(), 1.0)
    assert StartingPoint(SPACE).maybe_enqueue(study) is True


def test_no_trial_is_judged_against_the_starting_point():
    import dataclasses

    from objectives.metrics import Metrics
    from search_engine.study import make_pruner
    from search_engine.trial import EpochReporter, reference_bar
    from search_engine.settings import TrialSettings

    settings = TrialSettings(max_bytes=81920, max_epochs=6)
    behind = dataclasses.replace(Metrics.failed(), mean_px=40.0)  # 20-40x behind the other trial every epoch
    for chosen_by, stops_at in (("sampler", 1), (STARTING, None)):
        study = optuna.create_study(pruner=make_pruner(settings))
        study.add_trial(optuna.trial.create_trial(value=1.0, user_attrs={
            CHOSEN_BY: chosen_by, "history": [2.0, 1.0, 1.0, 1.0, 1.0, 1.0]}))
        trial = study.ask()
        reporter = EpochReporter(trial, settings, kb=10.0)
        stopped = next((epoch for epoch in range(1, 7) if reporter(epoch, behind)), None)
        # Against a sampled peer it stops at the first rung; the starting point is neither a peer at the rungs
        # nor a reference bar, so with nothing else to judge by it goes on.
        assert stopped == stops_at
        assert (reference_bar(40.0, 2, trial.number, study.trials) is None) == (chosen_by == STARTING)


def test_the_starting_points_are_the_config_files_the_readme_measures():
    import json

    from search_space.config import Config
    from tests.conftest import REPO

    files = [REPO / "benchmarks" / "configs" / name for name in ("real200-best.json", "start-deeper.json")]
    assert [Config(**json.loads(path.read_text())["config"]) for path in files] == starting_points(SPACE)


def test_the_shipped_config_is_a_starting_point_within_the_cap():
    import json

    from search_space.config import Config
    from tests.conftest import REPO

    record = json.loads((REPO / "benchmarks" / "configs" / "shipped.json").read_text())
    shipped = Config(**record["config"])
    # The search starts from what the README ships, and what ships keeps the cap it promises.
    assert shipped in starting_points(SPACE)
    assert weight_bytes(shipped) <= record["max_bytes"] == 81920


def test_a_starting_point_passes_the_rungs_but_not_the_reference_bar():
    import dataclasses

    from objectives.metrics import Metrics
    from search_engine.study import make_pruner
    from search_engine.trial import HOPELESS_FACTOR, SETTLE_EPOCHS, EpochReporter
    from search_engine.settings import TrialSettings

    settings = TrialSettings(max_bytes=81920, max_epochs=6)
    peer = [2.0, 1.0, 1.0, 1.0, 1.0, 1.0]  # a sampled trial's curve

    def stopped_at(chosen_by: str, error: float) -> int | None:
        study = optuna.create_study(pruner=make_pruner(settings))
        study.add_trial(optuna.trial.create_trial(value=1.0, user_attrs={CHOSEN_BY: "sampler", "history": peer}))
        study.enqueue_trial({}, user_attrs={CHOSEN_BY: chosen_by})
        reporter = EpochReporter(study.ask(), settings, kb=10.0)
        metrics = dataclasses.replace(Metrics.failed(), mean_px=error)
        return next((epoch for epoch in range(1, 7) if reporter(epoch, metrics)), None)

    slow = 2.5  # behind the peer (a slow starter, like a depth-4 U-Net after one epoch), not hopeless
    assert slow < HOPELESS_FACTOR * min(peer[1:])
    assert stopped_at("sampler", slow) == 1  # successive halving's first rung: the better of two goes on
    assert stopped_at(STARTING, slow) is None  # a starting point trains to the end
    assert stopped_at(STARTING, 40.0) == SETTLE_EPOCHS  # hopeless on this data: the reference bar stops it
