"""handler/verdict.py: the four answers from probabilities, pet probability and the two thresholds."""

from __future__ import annotations

import pytest

from handler.verdict import Thresholds, verdict

SURE_CAT = {"cat": 0.9, "dog": 0.1}
TORN = {"cat": 0.55, "dog": 0.45}


@pytest.mark.parametrize(
    "probabilities, pet, thresholds, expected",
    [
        (SURE_CAT, 0.9, Thresholds(0.75, 0.1), "cat"),
        ({"cat": 0.2, "dog": 0.8}, 0.9, Thresholds(0.75, 0.1), "dog"),
        (TORN, 0.9, Thresholds(0.75, 0.1), "unsure"),
        (SURE_CAT, 0.05, Thresholds(0.75, 0.1), "neither"),
        (TORN, 0.05, Thresholds(0.75, 0.1), "neither"),  # neither wins: its cat/dog split means nothing
        (TORN, 0.0, Thresholds(), "cat"),  # thresholds 0: always the more probable class
        (SURE_CAT, 0.1, Thresholds(0.9, 0.1), "cat"),  # at the threshold is not under it
    ],
)
def test_verdicts(probabilities, pet, thresholds, expected):
    assert verdict(probabilities, pet, thresholds) == expected


@pytest.mark.parametrize("bad", [{"unsure_below": 1.5}, {"neither_below": -0.1}, {"unsure_below": True},
                                 {"neither_below": "0.2"}])
def test_thresholds_outside_zero_to_one_are_refused(bad):
    with pytest.raises(ValueError, match="must be a number in \\[0, 1\\]"):
        Thresholds(**bad)
