"""Every study and trial attribute the search writes and its readers read, named once.

Optuna keeps what a study and its trials are beyond their parameters and values in user attributes; the search
(``search_engine``), the ablation, export, retrain and the analysis all read them, so their names (and the
values some of them take) are defined here and nowhere else. Constants only: importing it imports nothing.
"""

# --- a trial's user attributes ---

STATUS = "status"  # how the trial ended, one of STATUSES (a trial that predates it has none)
REASON = "reason"  # why, for a trial that is over the cap, diverged, crashed or was interrupted
CONFIG = "config"  # search_space.config.Config.to_dict(): what the trial built and trained
FAMILY = "family"
WEIGHT_BYTES = "weight_bytes"  # exact bytes of the deployed weights, in the study's weight format
PARAMS, MACS = "params", "macs"
RECEPTIVE_FIELD_ATTR = "receptive_field"  # [height, width] px that can move a heatmap's centre (search_space.receptive)
EPOCHS = "epochs"  # epochs trained
TRAIN_SECONDS = "train_seconds"
HISTORY = "history"  # validation mean px after each epoch (the learning curve early stopping compared)
SECONDS_ATTR = "seconds"  # cumulative training seconds at each epoch's end (the rungs' cost)
UNJUDGED_ATTR = "unjudged_rungs"  # rungs (indices) a trial reached before any other trial: judged when one does
STOPPED_BY = "stopped_by"  # the reference bar's reason, on a trial it stopped
VAL_MEAN_PX = "val_mean_px"  # the validation error (its other figures: val_median_px, val_pck2, ...)
VAL_FLOAT32_MEAN_PX = "val_float32_mean_px"  # an int8 study's trial: the float model's error before quantizing
SEEDS_ATTR = "val_mean_px_by_seed"  # a confirmed trial's error with each of its two seeds
BASELINE_ATTR = "baseline"  # a hand design's name (search_space.baselines): the reference
REUSED_ATTR = "reused_from"  # "study NAME trial N": a hand design's result copied from another study
CHOSEN_BY = "chosen_by"  # which rule chose the trial's family, batch norm and head: one of CHOOSERS
RAY_TRIAL, WORKER = "ray_trial", "worker"  # on Ray: which Tune trial and which host:pid trained it

# The values of STATUS.
OK, STOPPED, OVERSIZE, DIVERGED = "ok", "stopped", "oversize", "diverged"
INTERRUPTED = "interrupted"  # cut off by Ctrl-C or SIGTERM (recorded FAIL)
CRASHED = "crashed"  # its Ray worker died (recorded FAIL)
STATUSES = (OK, STOPPED, OVERSIZE, DIVERGED, INTERRUPTED, CRASHED)
# Statuses of a trial that has no result to stand on, whatever its Optuna state.
UNUSABLE_STATUSES = (DIVERGED, OVERSIZE)

# The values of CHOSEN_BY.
SAMPLER = "sampler"
HAND_DESIGN = "hand design"
FAIR = "fair share"  # fair exploration (search_engine.fair_share)
STARTING = "starting point"  # a fresh study's first sampled trials (search_space.start)
CHOOSERS = (SAMPLER, HAND_DESIGN, FAIR, STARTING)

# --- a search study's user attributes (search_engine.study.describe writes them) ---

DATA, SPLIT, VAL_TEAMS, VAL_FRACTION = "data", "split", "val_teams", "val_fraction"
SEED_ATTR = "seed"  # the study's seed (split, sampler, every trial); also an ablation run's training seed
MAX_BYTES = "max_bytes"  # the size cap in bytes (studies before it: the default cap)
WEIGHTS = "weights"  # the weight format the cap counts, "float32" or "int8" (studies before it: float32)
MAX_EPOCHS = "max_epochs"
OBJECTIVES = "objectives"  # ["error"] or ["error", "size"]
COMMAND = "command"
TRAIN_SIZE, VAL_SIZE = "train_size", "val_size"

# --- an ablation study's (runners/ablate.py) ---

ABLATION_OF = "ablation_of"  # the study attribute: the study and trial (or file) it is around
VARIANT_ATTR = "variant"  # a run's variant (a user attribute and a parameter); its seed is SEED_ATTR
