"""When a newly trained version goes into service on its own.

Example:

>>> policy = PromotionPolicy(tolerance=0.5)
>>> policy.decide(80.7, serving_dev_f1=81.0).promote
True
>>> policy.decide(79.0, serving_dev_f1=80.0, serving_version="v1").promote
False
>>> PromotionPolicy.from_env({"TAGGER_PROMOTION_TOLERANCE": "1.5"}).tolerance
1.5
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from tagger.errors import TaggerError

TOLERANCE_ENV = "TAGGER_PROMOTION_TOLERANCE"
DEFAULT_TOLERANCE = 0.5  # F1 points


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str


@dataclass(frozen=True)
class PromotionPolicy:
    """Promote when dev F1 >= serving dev F1 - ``tolerance`` (F1 points).

    Both F1 figures must come from the same dev sentences: the worker scores the
    serving model on the new model's dev set before it decides, and fails the job
    rather than compare with a figure measured elsewhere.
    """

    tolerance: float = DEFAULT_TOLERANCE

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PromotionPolicy:
        raw = (os.environ if environ is None else environ).get(TOLERANCE_ENV, "").strip()
        if not raw:
            return cls()
        try:
            return cls(float(raw))
        except ValueError:
            raise TaggerError(
                f"{TOLERANCE_ENV}={raw!r} is not a number of F1 points",
                fix=f"set {TOLERANCE_ENV} to e.g. 0.5, or unset it",
            ) from None

    def decide(
        self,
        candidate_dev_f1: float | None,
        *,
        serving_dev_f1: float | None,
        serving_version: str | None = None,
    ) -> PromotionDecision:
        if serving_dev_f1 is None:
            return PromotionDecision(True, "no model was in service")
        name = serving_version or "the serving version"
        if candidate_dev_f1 is None:
            return PromotionDecision(
                False,
                f"its dev F1 is undefined (no disease mention in the dev sentences), so it "
                f"cannot be compared with {name}: kept as a candidate",
            )
        drop = serving_dev_f1 - candidate_dev_f1
        if drop <= self.tolerance + 1e-9:
            return PromotionDecision(
                True,
                f"dev F1 {candidate_dev_f1:.2f} vs {serving_dev_f1:.2f} for {name} "
                f"(tolerance {self.tolerance:.2f}): promoted automatically",
            )
        return PromotionDecision(
            False,
            f"dev F1 {candidate_dev_f1:.2f} is {drop:.2f} points below {name} "
            f"({serving_dev_f1:.2f}), more than the {self.tolerance:.2f} tolerated: kept as "
            "a candidate; promote it by hand if you prefer it",
        )
