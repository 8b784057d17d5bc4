# Evidence for docs/decisions.md, "Adapting to a new camera": the three cells where the pooled-mean guard kept the
# shipped weights, the fine-tune's test error without the guard. Run from the project root after the curve's runs exist
# (python benchmarks/adapt_curve.py --model runs/ship-model-60 ...): python docs/evidence/adapt_kept_cells.py
import sys, json; sys.path.insert(0, '.')
import numpy as np, torch
from pathlib import Path
from benchmarks.adapt_curve import read_model, labelled_and_test
from cones.load import load_data
from objectives.heldout_runs import run_path
from search_space.registry import create_model, memory_format
from shipping.adapt import keypoint_errors, _train, AdaptSettings, fine_tune
torch.set_num_threads(2)
cfg, recipe, _ = read_model(Path('runs/ship-model-60'))
data = load_data('../shared/cones_dataset'); did = data.fingerprint()
inf = {"flip_test": recipe.flip_test, "decoder": recipe.decoder}
for team, seed, budget in (('tuwr', 0, 10), ('tuwr', 0, 30), ('pwrrt', 1, 10)):
    m = create_model(cfg); m.load_state_dict(torch.load(run_path(cfg, recipe, did, team, seed).with_suffix('.pt'), weights_only=True)); m.eval()
    inte = np.array([t == team for t in data.teams]); td, sh = data.subset(np.flatnonzero(inte)), data.subset(np.flatnonzero(~inte))
    lab, test = labelled_and_test(td, budget, seed)
    s = AdaptSettings(augmentation=recipe.augmentation)
    r = fine_tune(m, cfg, lab, shared=sh, settings=s, seed=seed, **inf)
    tuned = _train(m.to(memory_format=memory_format(cfg)).eval(), cfg, lab, sh, s, seed)
    print(team, seed, budget, "kept", r.kept_shipped, "cv before %.3f tried %.3f" % (r.before.mean_px, r.tried.mean_px), 'test unguarded %.3f' % keypoint_errors(tuned, cfg, test, **inf).mean().item(), flush=True)
