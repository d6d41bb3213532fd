"""The promotion policy: when a new version goes into service on its own."""

from __future__ import annotations

import pytest

from curation.promotion import PromotionPolicy
from tagger.errors import TaggerError


@pytest.mark.parametrize(
    ("candidate", "serving", "promote"),
    [(80.0, 80.0, True), (79.5, 80.0, True), (79.49, 80.0, False), (85.0, 80.0, True)],
)
def test_promotion_policy_tolerance(candidate: float, serving: float, promote: bool) -> None:
    decision = PromotionPolicy(0.5).decide(candidate, serving_dev_f1=serving, serving_version="v1")
    assert decision.promote is promote
    if not promote:
        assert "below v1" in decision.reason and "candidate" in decision.reason


def test_promotion_policy_promotes_when_nothing_serves() -> None:
    assert PromotionPolicy(0.5).decide(3.0, serving_dev_f1=None).promote


def test_promotion_tolerance_from_the_environment() -> None:
    assert PromotionPolicy.from_env({"TAGGER_PROMOTION_TOLERANCE": "1.5"}).tolerance == 1.5
    assert PromotionPolicy.from_env({}).tolerance == 0.5
    with pytest.raises(TaggerError, match="TAGGER_PROMOTION_TOLERANCE='half'"):
        PromotionPolicy.from_env({"TAGGER_PROMOTION_TOLERANCE": "half"})
