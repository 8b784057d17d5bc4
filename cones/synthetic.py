"""Procedural Formula Student cone crops with exact keypoints, and a writer that saves any ConeSet as an export.

``make_synthetic`` stands in for real data when there is none (tests, smoke runs, pre-training): blue, yellow,
small and large orange cones on asphalt, grass, gravel, concrete or sky, with base plate, stripes, shading,
shadow, neighbouring cones, varied framing, light, blur, noise and JPEG. The cone is drawn from one outline and
the 7 keypoints are points of that outline, so they are exact. ``save_supervisely`` writes a ConeSet in the
layout ``cones.supervisely.read_export`` reads, for fixture exports.

Geometry follows the real labels (measured on cones_dataset): upper points at 0.345 and mid points at 0.65 of
the top-to-base height (the stripe edges), half-widths about 0.12, 0.17 and 0.23 of the height at the upper,
mid and base points, and a truncated, rounded tip whose top point is the topmost point of the cone.
"""
from __future__ import annotations

import bisect
import dataclasses
import json
import math
from pathlib import Path
from typing import NamedTuple, Sequence

import cv2
import numpy as np
import torch

from cones.types import DEFAULT_SIZE, NUM_KEYPOINTS, ConeSet

CONE_KINDS = ("blue", "yellow", "orange_small", "orange_large")
_KIND_CDF = list(np.cumsum([0.35, 0.35, 0.2, 0.1]))
CONES_PER_FRAME = 4
_SUPERSAMPLE = 4  # draw the cone at 4x and area-downscale: antialiased edges
_SUBPIXEL_BITS = 4  # cv2.fillPoly fixed-point fraction bits
_ARC = np.linspace(0.0, np.pi, 9)  # 0 = right end, pi = left end of a half ellipse
_COS, _SIN = np.cos(_ARC), np.sin(_ARC)
# Keep keypoints this far inside the pixel-centre range [0, W-1] x [0, H-1].
_MARGIN = 0.5
# Gaussian noise fields drawn once per call and picked at random: drawing fresh noise per crop was the
# generator's largest cost.
_NOISE_FIELDS = 128

# Body and stripe colour ranges: (dark end, light end) RGB.
_ORANGE = np.array([(185, 45, 15), (255, 125, 55)], dtype=np.float64)
_BODY = {
    "blue": np.array([(12, 30, 100), (70, 160, 240)], dtype=np.float64),
    "yellow": np.array([(190, 150, 5), (255, 240, 90)], dtype=np.float64),
    "orange_small": _ORANGE,
    "orange_large": _ORANGE,
}
_WHITE = np.array([(185, 190, 195), (250, 250, 250)], dtype=np.float64)
_BLACK = np.array([(10, 10, 10), (70, 68, 60)], dtype=np.float64)

# Ground and sky textures: (weight, RGB low, RGB high).
_BACKGROUNDS = {
    "asphalt": (0.38, (55, 55, 55), (150, 150, 155)),
    "concrete": (0.14, (140, 135, 125), (215, 210, 200)),
    "grass": (0.15, (45, 85, 25), (115, 160, 75)),
    "gravel": (0.13, (105, 95, 75), (170, 150, 125)),
    "dark": (0.08, (10, 10, 12), (60, 60, 60)),
    "sky": (0.12, (140, 170, 200), (235, 240, 255)),
}
_BG_NAMES = tuple(_BACKGROUNDS)
_BG_CDF = list(np.cumsum([v[0] for v in _BACKGROUNDS.values()]) / sum(v[0] for v in _BACKGROUNDS.values()))


def make_synthetic(n: int, seed: int = 0, size: tuple[int, int] = DEFAULT_SIZE) -> ConeSet:
    """``n`` synthetic cone crops of ``size`` (width, height), 4 cones per frame, deterministic by ``seed``.

    Frame ``f`` depends only on (seed, f), so a smaller ``n`` gives a prefix of a larger one.
    Keypoints lie inside [0, W-1] x [0, H-1] even when the cone itself runs out of the crop.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    width, height = int(size[0]), int(size[1])
    if width < 16 or height < 16:
        raise ValueError(f"size must be at least 16 x 16 (width, height), got {size}")
    images = np.empty((n, height, width, 3), dtype=np.uint8)
    keypoints = np.empty((n, NUM_KEYPOINTS, 2), dtype=np.float32)
    names, frames = [], []
    noise_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,)))
    noise = _Noise(mono=noise_rng.standard_normal((_NOISE_FIELDS, height, width), dtype=np.float32),
                   colour=noise_rng.standard_normal((_NOISE_FIELDS, height, width, 3), dtype=np.float32))
    for frame in range(-(-n // CONES_PER_FRAME)):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0, frame)))
        scene = _sample_scene(rng)
        for cone in range(min(CONES_PER_FRAME, n - frame * CONES_PER_FRAME)):
            i = frame * CONES_PER_FRAME + cone
            images[i], keypoints[i] = _render_crop(rng, scene, noise, width, height)
            frames.append(f"synthetic_{frame:05d}")
            names.append(f"synthetic_{frame:05d}_{cone}.png")
    return ConeSet(
        images=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),  # (N, H, W, 3) -> (N, 3, H, W)
        keypoints=torch.from_numpy(keypoints),
        bad_quality=torch.zeros(n, dtype=torch.bool),
        names=tuple(names),
        teams=("synthetic",) * n,
        frames=tuple(frames),
    )


def with_teams(data: ConeSet, teams: Sequence[str]) -> ConeSet:
    """``data`` with its frames dealt to ``teams`` in turn (frame 0 to the first team, ...), names and frames
    renamed ``<team>_<frame>_<cone>.png``: synthetic cones of several invented cameras, for what needs teams
    (leave-one-team-out, several validation teams) in tests and demos."""
    if not teams or any(not team or "_" in team for team in teams):
        raise ValueError(f"teams must be non-empty names without '_', got {list(teams)}")
    order = {frame: i for i, frame in enumerate(dict.fromkeys(data.frames))}
    team_of = [teams[order[frame] % len(teams)] for frame in data.frames]
    names = tuple(f"{team}_{name.split('_', 1)[1]}" for team, name in zip(team_of, data.names))
    frames = tuple(f"{team}_{frame.split('_', 1)[1]}" for team, frame in zip(team_of, data.frames))
    return dataclasses.replace(data, names=names, teams=tuple(team_of), frames=frames)


def save_supervisely(data: ConeSet, root: Path) -> None:
    """Write ``data`` as a Supervisely point export: ``root/img/<name>`` PNG and ``root/ann/<name>.json``.

    Points are rounded to integers like hand labels and listed in canonical order; the ``bad quality``
    tag is set where ``data.bad_quality`` is True.
    """
    root = Path(root)
    (root / "img").mkdir(parents=True, exist_ok=True)
    (root / "ann").mkdir(parents=True, exist_ok=True)
    images = data.images.permute(0, 2, 3, 1).numpy()  # (N, H, W, 3) RGB
    points = np.rint(data.keypoints.numpy()).astype(int)
    width, height = data.size
    for image, pts, bad, name in zip(images, points, data.bad_quality.tolist(), data.names):
        if not cv2.imwrite(str(root / "img" / name), np.ascontiguousarray(image[:, :, ::-1])):
            raise OSError(f"could not write {root / 'img' / name}; the name needs an image suffix such as .png")
        ann = {
            "description": "",
            "size": {"height": int(height), "width": int(width)},
            "tags": [{"name": "bad quality", "value": None}] if bad else [],
            "objects": [
                {"geometryType": "point", "classTitle": "Top",
                 "points": {"exterior": [[int(x), int(y)]], "interior": []}}
                for x, y in pts
            ],
        }
        (root / "ann" / f"{name}.json").write_text(json.dumps(ann, indent=1))


# ---------------------------------------------------------------------------------------------- scene and crop

def _pick(rng: np.random.Generator, cdf: list[float]) -> int:
    """An index drawn with the probabilities whose running sum is ``cdf`` (rng.choice(p=...) is 20x slower)."""
    return min(bisect.bisect(cdf, rng.random() * cdf[-1]), len(cdf) - 1)


def _sample_scene(rng: np.random.Generator) -> dict:
    """What the cones of one frame share: the light and the kind of ground."""
    return {
        "gain": rng.uniform(0.6, 1.35),
        "cast": rng.uniform(0.88, 1.12, size=3),
        "haze": rng.uniform(0.0, 0.4) if rng.random() < 0.3 else 0.0,
        "ground": _BG_NAMES[_pick(rng, _BG_CDF)],
        "blur": rng.uniform(0.0, 1.0),
        "kind": _pick(rng, _KIND_CDF),
    }


def _render_crop(rng: np.random.Generator, scene: dict, noise: "_Noise", width: int,
                 height: int) -> tuple[np.ndarray, np.ndarray]:
    """One crop (H, W, 3) uint8 RGB and its keypoints (7, 2) in pixel-centre coordinates."""
    # Cones of a frame are often one colour (a track side); sometimes another.
    kind = CONE_KINDS[scene["kind"] if rng.random() < 0.6 else _pick(rng, _KIND_CDF)]
    shape = _cone_shape(rng, kind)
    to_pixels = _place(rng, shape, width, height)
    keypoints = to_pixels(shape["keypoints"])

    background = _background(rng, scene["ground"], noise, width, height)
    _shadow(rng, background, to_pixels, shape)

    ss = _SUPERSAMPLE
    canvas = np.zeros((height * ss, width * ss, 4), dtype=np.uint8)  # RGBA
    if rng.random() < 0.3:  # a neighbouring cone behind, partly in the crop
        _draw_neighbour(rng, canvas, kind, shape, to_pixels)
    _draw_cone(rng, canvas, kind, shape, to_pixels)
    # Two exact halvings with INTER_LINEAR average 4 x 4 blocks like INTER_AREA, five times faster.
    canvas = cv2.resize(canvas, (width * 2, height * 2), interpolation=cv2.INTER_LINEAR)
    canvas = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_LINEAR).astype(np.float32)
    colour = canvas[:, :, :3]  # premultiplied by alpha: the canvas is black outside the cone
    alpha = canvas[:, :, 3] * np.float32(1 / 255)
    colour *= _shading(rng, keypoints, width, height)[:, :, None]

    image = background * (1.0 - alpha[:, :, None]) + colour
    image = _camera(rng, scene, noise, image)
    return image, keypoints


def _cone_shape(rng: np.random.Generator, kind: str) -> dict:
    """Outline polygons and keypoints in cone units: top point (0, 0), base corners at y = 1, x to the right."""
    tip = rng.uniform(0.04, 0.08)  # half-width of the truncated top
    base = rng.uniform(0.15, 0.2) if kind == "orange_large" else rng.uniform(0.19, 0.27)
    cap = tip * rng.uniform(0.3, 0.8)  # height of the rounded tip
    tilt = rng.uniform(0.05, 0.22)  # seen from slightly above: minor / major axis of horizontal circles
    upper, mid = rng.uniform(0.32, 0.37), rng.uniform(0.62, 0.68)

    def half(y: float) -> float:
        return tip + (base - tip) * (y - cap) / (1.0 - cap)

    def front(y: float) -> np.ndarray:
        """Front half of the horizontal circle at height y, right to left: (9, 2)."""
        r = half(y)
        return np.stack([r * _COS, y + tilt * r * _SIN], axis=1)

    cap_arc = np.stack([tip * _COS[::-1], cap - cap * _SIN[::-1]], axis=1)  # left, top, right
    body = np.concatenate([cap_arc, front(1.0)])

    if kind == "orange_large":
        gap = (mid - upper) * rng.uniform(0.32, 0.42)
        bands = [(upper, upper + gap), (mid - gap, mid)]
    else:
        bands = [(upper, mid)]
    stripes = [np.concatenate([front(y0), front(y1)[::-1]]) for y0, y1 in bands]

    # Square base plate seen from above at an angle: hull of its top and bottom faces.
    plate_half = base * rng.uniform(1.15, 1.4) * np.sqrt(2.0)
    angles = rng.uniform(0, np.pi / 2) + np.arange(4) * np.pi / 2
    top_face = np.stack([plate_half * np.cos(angles), 1.0 + tilt * plate_half * np.sin(angles)], axis=1)
    thickness = rng.uniform(0.02, 0.05)
    plate = np.concatenate([top_face, top_face + [0.0, thickness]])

    keypoints = np.array([
        [half(1.0), 1.0], [half(mid), mid], [half(upper), upper], [0.0, 0.0],
        [-half(upper), upper], [-half(mid), mid], [-half(1.0), 1.0],
    ])
    return {"body": body, "stripes": stripes, "plate": plate, "keypoints": keypoints, "base": base}


def _place(rng: np.random.Generator, shape: dict, width: int, height: int):
    """A map from cone units to crop pixels: scale, lean, shear, mild perspective, position (keypoints inside)."""
    cone_height = height * rng.uniform(0.42, 0.9)
    squeeze = rng.uniform(0.88, 1.12)
    angle = math.radians(min(7.0, max(-7.0, rng.normal(0.0, 2.5))))
    shear = min(0.07, max(-0.07, rng.normal(0.0, 0.025)))
    persp = rng.uniform(-0.08, 0.08, size=2)
    cos, sin = math.cos(angle), math.sin(angle)
    rotation = np.array([[cos, -sin], [sin, cos]])

    def linear_part(points: np.ndarray, scale: float) -> np.ndarray:
        w = 1.0 + persp[0] * points[:, :1] + persp[1] * (points[:, 1:] - 0.5)
        p = points / w
        p = np.stack([squeeze * (p[:, 0] + shear * p[:, 1]), p[:, 1]], axis=1) * scale
        return p @ rotation.T

    for _ in range(20):  # shrink until the keypoints fit
        kp = linear_part(shape["keypoints"], cone_height)
        low = _MARGIN - kp.min(axis=0)
        high = np.array([width - 1.0, height - 1.0]) - _MARGIN - kp.max(axis=0)
        if np.all(high >= low):
            break
        cone_height *= 0.9
    if rng.random() < 0.7:  # framed like the real crops: centred, the keypoints' middle at 44% of the height
        span = kp.max(axis=0) - kp.min(axis=0)
        target = np.array([(width - 1) / 2.0, height * 0.44]) + rng.normal(0.0, [1.5, 2.0])
        offset = target - (kp.min(axis=0) + span / 2)
    else:  # anywhere the keypoints stay inside: off-centre, often truncated
        offset = rng.uniform(low, high)
    offset = np.clip(offset, low, high)

    def to_pixels(points: np.ndarray) -> np.ndarray:
        return (linear_part(points, cone_height) + offset).astype(np.float32)

    return to_pixels


def _fill(canvas: np.ndarray, points: np.ndarray, value) -> None:
    """Fill a pixel-coordinate polygon on a supersampled canvas; 1x coordinate x is 4x coordinate 4x + 1.5."""
    ss = _SUPERSAMPLE
    fixed = np.round((points * ss + (ss - 1) / 2.0) * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    cv2.fillPoly(canvas, [fixed], value, lineType=cv2.LINE_8, shift=_SUBPIXEL_BITS)


def _cone_colours(rng: np.random.Generator, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Body, stripe and plate colours (RGB floats)."""
    lo, hi = _BODY[kind]
    body = lo + (hi - lo) * rng.uniform(0, 1) + rng.normal(0, 8, size=3)
    lo, hi = _BLACK if kind == "yellow" else _WHITE
    stripe = lo + (hi - lo) * rng.uniform(0, 1) + rng.normal(0, 5, size=3)
    stripe = stripe + (body - stripe) * rng.uniform(0.0, 0.25)  # a white stripe picks up the cone's tint
    plate = body * rng.uniform(0.7, 1.05)
    return tuple(np.clip(c, 0, 255) for c in (body, stripe, plate))


def _draw_cone(rng: np.random.Generator, canvas: np.ndarray, kind: str, shape: dict, to_pixels) -> None:
    """Plate, body and stripes onto the supersampled RGBA canvas."""
    body, stripe, plate = _cone_colours(rng, kind)
    polygons = [shape["plate"], shape["body"], *shape["stripes"]]
    values = [plate, body] + [stripe] * len(shape["stripes"])
    pixels = to_pixels(np.concatenate(polygons))  # one transform for all polygons
    ends = np.cumsum([len(p) for p in polygons])[:-1]
    for i, (points, value) in enumerate(zip(np.split(pixels, ends), values)):
        if i == 0:  # the plate is the hull of its two faces
            points = cv2.convexHull(points)[:, 0]
        _fill(canvas, points, (*(float(v) for v in value), 255.0))


def _draw_neighbour(rng: np.random.Generator, canvas: np.ndarray, kind: str, shape: dict, to_pixels) -> None:
    """Another cone beside and a little behind the main one, so only part of it is in the crop."""
    other_kind = kind if rng.random() < 0.6 else CONE_KINDS[rng.integers(len(CONE_KINDS))]
    other = _cone_shape(rng, other_kind)
    scale = rng.uniform(0.5, 1.0)
    side = 1.0 if rng.random() < 0.5 else -1.0
    dx = side * (shape["base"] + other["base"] * scale) * rng.uniform(1.3, 2.2)
    dy = rng.uniform(-0.25, 0.05)
    shift = np.array([dx, dy + 1.0 - scale])  # its base at y = 1 + dy
    moved = {"body": other["body"] * scale + shift, "plate": other["plate"] * scale + shift,
             "stripes": [s * scale + shift for s in other["stripes"]]}
    _draw_cone(rng, canvas, other_kind, moved, to_pixels)


def _shading(rng: np.random.Generator, keypoints: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W) light across the round body: a side-to-side ramp and a soft highlight."""
    centre = keypoints[3, 0]
    half_width = max(1.0, (keypoints[0, 0] - keypoints[6, 0]) / 2)
    s = (np.arange(width, dtype=np.float32) - centre) / half_width
    ramp = rng.uniform(-0.35, 0.35)
    highlight = rng.uniform(0.0, 0.3) * np.exp(-((s - rng.uniform(-0.6, 0.6)) / 0.3) ** 2)
    row = np.clip(1.0 + ramp * s + highlight, 0.45, 1.6)
    return np.broadcast_to(row, (height, width))


class _Noise(NamedTuple):
    """Standard normal fields: mono (K, H, W) for ground grain, colour (K, H, W, 3) for sensor noise."""

    mono: np.ndarray
    colour: np.ndarray


def _texture(rng: np.random.Generator, ground: str, noise: _Noise, width: int, height: int) -> np.ndarray:
    """(H, W, 3) float32 ground or sky: a base colour, blotches and grain."""
    _, lo, hi = _BACKGROUNDS[ground]
    lo, hi = np.array(lo, dtype=np.float32), np.array(hi, dtype=np.float32)
    base = lo + (hi - lo) * rng.uniform(0, 1) + rng.normal(0, 6, size=3).astype(np.float32)
    coarse = rng.standard_normal((rng.integers(2, 7), rng.integers(2, 6)), dtype=np.float32)
    coarse = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    grain_std = {"gravel": 22.0, "asphalt": 12.0, "grass": 14.0, "concrete": 8.0, "dark": 6.0, "sky": 2.0}[ground]
    grain = noise.mono[rng.integers(len(noise.mono))] * np.float32(grain_std * rng.uniform(0.3, 1.0))
    if ground in ("gravel", "grass") and rng.random() < 0.5:
        grain = cv2.GaussianBlur(grain, (0, 0), 0.7) * 1.6  # clumps rather than pixel noise
    texture = base + (coarse * rng.uniform(3, 25) + grain)[:, :, None]
    return texture


def _background(rng: np.random.Generator, ground: str, noise: _Noise, width: int, height: int) -> np.ndarray:
    """(H, W, 3) float32 RGB 0..255: ground, maybe a far part or sky above, a gradient, clutter."""
    image = _texture(rng, ground, noise, width, height)
    if rng.random() < 0.35:  # horizon: something else above a soft line
        far = _BG_NAMES[_pick(rng, _BG_CDF)]
        upper = _texture(rng, far, noise, width, height)
        horizon = rng.uniform(-0.1, 0.55) * height
        rows = np.arange(height, dtype=np.float32)[:, None, None]
        blend = np.clip((rows - horizon) / rng.uniform(0.5, 3.0) + 0.5, 0.0, 1.0)
        image = upper * (1.0 - blend) + image * blend
    direction = rng.uniform(0, 2 * np.pi)
    xs = np.linspace(-0.5, 0.5, width, dtype=np.float32)
    ys = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
    ramp = np.cos(direction) * xs + np.sin(direction) * ys  # (H, W)
    image += (ramp * rng.uniform(-50, 50))[:, :, None]
    for _ in range(rng.integers(0, 4) if rng.random() < 0.55 else 0):
        _clutter(rng, image, width, height)
    return image


def _clutter(rng: np.random.Generator, image: np.ndarray, width: int, height: int) -> None:
    """A road marking, board or blob drawn on the background."""
    what = rng.integers(3)
    if what == 0:
        value = (235.0, 235.0, 230.0) if rng.random() < 0.7 else (230.0, 200.0, 40.0)
    else:  # mostly dull colours: cars, barriers, people, tyres
        colour = rng.uniform(0, 255, size=3)
        value = tuple(float(v) for v in colour + (colour.mean() - colour) * rng.uniform(0.3, 0.95))
    p = (rng.uniform(-0.2, 1.2, size=2) * [width, height]).astype(int)
    if what == 0:
        q = (rng.uniform(-0.2, 1.2, size=2) * [width, height]).astype(int)
        cv2.line(image, tuple(map(int, p)), tuple(map(int, q)), value, int(rng.integers(1, 5)), cv2.LINE_AA)
    elif what == 1:
        q = p + (rng.uniform(0.1, 0.6, size=2) * [width, height]).astype(int)
        cv2.rectangle(image, tuple(map(int, p)), tuple(map(int, q)), value, -1, cv2.LINE_AA)
    else:
        axes = tuple(int(a) for a in rng.uniform(2, 14, size=2))
        cv2.ellipse(image, tuple(map(int, p)), axes, float(rng.uniform(0, 180)), 0, 360, value, -1, cv2.LINE_AA)


def _shadow(rng: np.random.Generator, image: np.ndarray, to_pixels, shape: dict) -> None:
    """Darken the ground under and beside the base plate (in place)."""
    if rng.random() < 0.25:
        return
    height, width = image.shape[:2]
    plate = to_pixels(shape["plate"])
    centre = plate.mean(axis=0) + [rng.uniform(-0.6, 0.6) * np.ptp(plate[:, 0]), 0.0]
    axes = (max(1, int(np.ptp(plate[:, 0]) * rng.uniform(0.5, 0.9))), max(1, int(np.ptp(plate[:, 1]) * 0.8)))
    mask = np.zeros((height, width), dtype=np.float32)
    cv2.ellipse(mask, (int(centre[0]), int(centre[1])), axes, 0.0, 0, 360, 1.0, -1, cv2.LINE_AA)
    mask = cv2.GaussianBlur(mask, (0, 0), 1.2)
    image *= (1.0 - rng.uniform(0.15, 0.5) * mask)[:, :, None]


def _camera(rng: np.random.Generator, scene: dict, noise: _Noise, image: np.ndarray) -> np.ndarray:
    """Light, haze, blur, low resolution, noise and JPEG; returns (H, W, 3) uint8."""
    height, width = image.shape[:2]
    # Exposure, colour cast and haze (a pull towards a bright grey) in one multiply-add.
    haze = scene["haze"]
    gain = (scene["gain"] * rng.uniform(0.9, 1.1) * (1.0 - haze)) * scene["cast"]
    image = image * gain.astype(np.float32) + np.float32(haze * rng.uniform(150, 240))
    sigma = scene["blur"] * rng.uniform(0.5, 1.3)
    if sigma > 0.25:
        image = cv2.GaussianBlur(image, (0, 0), sigma)
    if rng.random() < 0.3:  # a far cone: the crop was upscaled from fewer pixels
        factor = rng.uniform(1.4, 3.0)
        small = cv2.resize(image, (max(4, round(width / factor)), max(4, round(height / factor))),
                           interpolation=cv2.INTER_AREA)
        image = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    image += noise.colour[rng.integers(len(noise.colour))] * np.float32(rng.uniform(0.0, 7.0))
    image = np.clip(image, 0, 255, out=image).astype(np.uint8)
    if rng.random() < 0.3:
        ok, buffer = cv2.imencode(".jpg", image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(30, 90))])
        image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)[:, :, ::-1]
    return image
