"""The rule that decides whether an exported model's ONNX Runtime keypoints agree with torch's."""
import numpy as np

from shipping.agreement import agreement_text, agreement_verdict


def distances(crops: int = 652, off: int = 0, by: float = 1.0) -> np.ndarray:
    distance = np.full((crops, 7), 2e-6)  # what a float32 export gives on the rest (docs/int8.md: 5.4e-06 px)
    distance.flat[:off] = by
    return distance


def test_float32_one_tied_heatmap_peak_in_thousands_of_keypoints_still_agrees():
    # Seen on tuwr: 1 keypoint of 4,564 a pixel apart (two heatmap cells tied to the last bit).
    verdict = agreement_verdict(distances(off=1), error_gap=1 / 4564)
    assert verdict["agrees"] and verdict["over"] == 1
    assert "1 of 4,564 keypoints further" in agreement_text(verdict)


def test_float32_a_wrong_export_disagrees():
    assert not agreement_verdict(distances(off=5), error_gap=0.0)["agrees"]  # 5 > one in a thousand
    assert not agreement_verdict(distances(off=4564, by=0.01), error_gap=0.0)["agrees"]  # every keypoint moved
    assert not agreement_verdict(distances(), error_gap=0.01)["agrees"]  # the errors differ
    small = agreement_verdict(distances(crops=20, off=1), error_gap=0.0)  # 140 keypoints: none may be off
    assert not small["agrees"] and "DISAGREE" in agreement_text(small)


def test_int8_judges_the_median_keypoint_and_the_error():
    assert agreement_verdict(distances(off=293, by=23.7), error_gap=0.0075, weights="int8")["agrees"]
    assert not agreement_verdict(distances(off=4564, by=0.1), error_gap=0.0, weights="int8")["agrees"]
