# Evidence for docs/decisions.md, "Adapting to a new camera" (a prototype kept as it ran, not product code).
# Run from the project root: python docs/evidence/adapt_prototype3.py  (needs runs/ship-model-60, see README)
"""Prototype 3: variant b (no mirror, shared mixed in as labelled) on ALL labelled crops: constant lr (test
curve, also at 100 crops) against a cosine decay to 0 over S steps (S = 100, 160, 240). Tuning seeds 10, 11."""
import sys, time, json, copy, math; sys.path.insert(0,'.')
import numpy as np, torch
from dataclasses import replace
from pathlib import Path
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from benchmarks.adapt_curve import read_model, labelled_and_test
from cones.augment import augment
from cones.load import load_data
from objectives.heldout_runs import run_path
from objectives.train import heatmap_loss, predict_keypoints
from search_space.registry import create_model, memory_format
from shipping.adapt import mean_offset, keypoint_errors, pixel_errors, _train_mode_with_frozen_statistics

def run(model, cfg, train, test, shared, aug, seed, inference, steps, cosine, every):
    torch.manual_seed(seed); g = torch.Generator().manual_seed(seed)
    fmt = memory_format(cfg); net = copy.deepcopy(model).to(memory_format=fmt)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)) if cosine else 1.0)
    h, w = train.images.shape[-2:]
    def ev():
        net.eval(); return keypoint_errors(net, cfg, test, **inference).mean().item()
    out = []
    for step in range(1, steps + 1):
        _train_mode_with_frozen_statistics(net)
        idx = torch.randint(len(train), (16,), generator=g); o = torch.randint(len(shared), (16,), generator=g)
        im = torch.cat([train.images[idx], shared.images[o]]); kp = torch.cat([train.keypoints[idx], shared.keypoints[o]])
        im, kp = augment(im.float().div_(255), kp, aug, g)
        loss = heatmap_loss(net, cfg, im.contiguous(memory_format=fmt), kp, h, w)
        opt.zero_grad(set_to_none=True); loss.backward(); opt.step(); sched.step()
        if step % every == 0 or step == steps: out.append((step, ev()))
    return out

def task(args):
    data, cfg, recipe, did, team, mseed, sseed, budgets = args
    torch.set_num_threads(1)
    m = create_model(cfg); m.load_state_dict(torch.load(run_path(cfg, recipe, did, team, mseed).with_suffix('.pt'), weights_only=True)); m.eval()
    inf = {"flip_test": recipe.flip_test, "decoder": recipe.decoder}
    inte = np.array([t == team for t in data.teams]); td, sh = data.subset(np.flatnonzero(inte)), data.subset(np.flatnonzero(~inte))
    noflip = replace(recipe.augmentation, flip_prob=0.0)
    rows = []
    for b in budgets:
        lab, test = labelled_and_test(td, b, sseed)
        pred = predict_keypoints(m, test.images, memory_format(cfg), **inf)
        row = {"team": team, "sseed": sseed, "budget": b, "shipped": pixel_errors(pred, test.keypoints).mean().item(),
               "offset": pixel_errors(pred - mean_offset(m, cfg, lab, **inf), test.keypoints).mean().item()}
        if b == 100:
            row["const"] = run(m, cfg, lab, test, sh, noflip, sseed, inf, 300, False, 20)
        for S in (100, 160, 240):
            row[f"cos{S}"] = run(m, cfg, lab, test, sh, noflip, sseed, inf, S, True, 10**6)[-1][1]
        print(json.dumps({k: v for k, v in row.items() if k != 'const'}), flush=True)
        rows.append(row)
    return rows

if __name__ == "__main__":
    cfg, recipe, name = read_model(Path('runs/ship-model-60'))
    data = load_data('../shared/cones_dataset'); did = data.fingerprint()
    tasks = [(data, cfg, recipe, did, t, 0, s, [10, 30, 100]) for s in (10, 11) for t in ('amz', 'pwrrt', 'tuwr')]
    with ProcessPoolExecutor(2, mp_context=get_context("spawn")) as pool:
        rows = [r for rr in pool.map(task, tasks) for r in rr]
    Path('runs/adapt_prototype3.json').write_text(json.dumps(rows))
