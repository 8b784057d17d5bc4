# Evidence for docs/decisions.md, "Adapting to a new camera" (a prototype kept as it ran, not product code).
# Run from the project root: python docs/evidence/adapt_prototype2.py  (needs runs/ship-model-60, see README)
"""Prototype 2: flip augmentation mirrors a team's asymmetric shift; shared crops' labels can carry the shift.
Tuning split seeds 10, 11 (the benchmark reports 0, 1). Variants: a = today's (mix, flip), b = mix no flip,
c = no flip + shared labels shifted by the new crops' mean offset. Each: train on 70% (choose step on the 30%
frames held out, patience 5 like fine_tune) and on all labelled crops (test curve)."""
import sys, time, json, copy; sys.path.insert(0,'.')
import numpy as np, torch
from dataclasses import replace
from pathlib import Path
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from benchmarks.adapt_curve import read_model, labelled_and_test
from cones.augment import augment
from cones.load import load_data
from cones.splits import split
from objectives.heldout_runs import run_path
from objectives.train import heatmap_loss, predict_keypoints
from search_space.registry import create_model, memory_format
from shipping.adapt import mean_offset, keypoint_errors, pixel_errors, _train_mode_with_frozen_statistics

STEPS, EVERY = 300, 20

def run(model, cfg, train, evals, shared, aug, seed, inference, shift=None):
    torch.manual_seed(seed); g = torch.Generator().manual_seed(seed)
    fmt = memory_format(cfg); net = copy.deepcopy(model).to(memory_format=fmt)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    h, w = train.images.shape[-2:]
    skp = shared.keypoints if shift is None else shared.keypoints - shift
    def ev():
        net.eval(); return [keypoint_errors(net, cfg, e, **inference).mean().item() for e in evals]
    out = [(0, *ev())]
    for step in range(1, STEPS + 1):
        _train_mode_with_frozen_statistics(net)
        idx = torch.randint(len(train), (16,), generator=g); o = torch.randint(len(shared), (16,), generator=g)
        im = torch.cat([train.images[idx], shared.images[o]]); kp = torch.cat([train.keypoints[idx], skp[o]])
        im, kp = augment(im.float().div_(255), kp, aug, g)
        loss = heatmap_loss(net, cfg, im.contiguous(memory_format=fmt), kp, h, w)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step()
        if step % EVERY == 0: out.append((step, *ev()))
    return out

def choose(curve, patience=5):
    best, bad = (curve[0][1], 0, curve[0][2]), 0
    for step, ho, te in curve[1:]:
        if ho < best[0]: best, bad = (ho, step, te), 0
        else:
            bad += 1
            if bad >= patience: break
    return best

def task(args):
    data, cfg, recipe, did, team, mseed, sseed, budgets = args
    torch.set_num_threads(1)
    m = create_model(cfg); m.load_state_dict(torch.load(run_path(cfg, recipe, did, team, mseed).with_suffix('.pt'), weights_only=True)); m.eval()
    inf = {"flip_test": recipe.flip_test, "decoder": recipe.decoder}
    inte = np.array([t == team for t in data.teams]); td, sh = data.subset(np.flatnonzero(inte)), data.subset(np.flatnonzero(~inte))
    noflip = replace(recipe.augmentation, flip_prob=0.0)
    rows = []
    for b in budgets:
        t0 = time.time()
        lab, test = labelled_and_test(td, b, sseed)
        pred = predict_keypoints(m, test.images, memory_format(cfg), **inf)
        tr, ho = split(lab, val_fraction=0.3, seed=sseed)
        row = {"team": team, "sseed": sseed, "budget": b, "shipped": pixel_errors(pred, test.keypoints).mean().item(),
               "offset": pixel_errors(pred - mean_offset(m, cfg, lab, **inf), test.keypoints).mean().item(),
               "offset_tr": pixel_errors(pred - mean_offset(m, cfg, tr, **inf), test.keypoints).mean().item()}
        for name, aug, shifted in (("a", recipe.augmentation, False), ("b", noflip, False), ("c", noflip, True)):
            s_tr = mean_offset(m, cfg, tr, **inf) if shifted else None
            s_all = mean_offset(m, cfg, lab, **inf) if shifted else None
            c_ho = run(m, cfg, tr, [ho, test], sh, aug, sseed, inf, shift=s_tr)
            row[name] = choose(c_ho); row[name + "_curve_ho"] = c_ho
            row[name + "_curve_all"] = run(m, cfg, lab, [test], sh, aug, sseed, inf, shift=s_all)
        row["seconds"] = time.time() - t0
        print(json.dumps({k: v for k, v in row.items() if 'curve' not in k}), flush=True)
        rows.append(row)
    return rows

if __name__ == "__main__":
    cfg, recipe, name = read_model(Path('runs/ship-model-60'))
    data = load_data('../shared/cones_dataset'); did = data.fingerprint()
    tasks = [(data, cfg, recipe, did, t, 0, s, [10, 30]) for s in (10, 11) for t in ('amz', 'pwrrt', 'tuwr')]
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        rows = [r for rr in pool.map(task, tasks) for r in rr]
    Path('runs/adapt_prototype2.json').write_text(json.dumps(rows))
