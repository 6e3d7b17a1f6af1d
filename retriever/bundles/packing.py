"""The budget packer: which pieces of which specs go into a bundle of at most N tokens.

A bundle offers each spec at several resolutions: a one-line summary, some of its sections, all of
them. Rather than choosing a resolution per spec up front, every piece is a `Step` with a token
cost and a value (relevance), and a spec's sections and history require its summary. The packer
takes steps in order of value per token, skipping those that no longer fit, which upgrades a spec
from summary to sections to full exactly while budget remains. That greedy is the classic 1/2-ish
knapsack approximation and, unlike an exact knapsack, runs in a sort; a final step cuts the best
piece that did not fit down to the gap left, so a bundle whose material exceeds the budget fills it.

Pure and deterministic: ties go to the step key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["MIN_CUT_TOKENS", "Plan", "Step", "pack"]

MIN_CUT_TOKENS = 24  # a cut piece shorter than this says too little to be worth its header


class Step(NamedTuple):
    """A tuple, not a dataclass: a bundle makes hundreds of them (one per section of every
    candidate spec) and a frozen dataclass's construction costs several times as much."""

    key: str  # unique among the steps given to pack
    tokens: int  # what taking it adds to the bundle
    value: float
    requires: str | None = None  # a step that must be taken first (a spec's summary)
    divisible: bool = False  # may be cut short to fill the last gap
    min_tokens: int = 0  # a cut must leave at least this much of the step (its own header)

    @property
    def density(self) -> float:
        return self.value / max(self.tokens, 1)


@dataclass
class Plan:
    taken: list[str] = field(default_factory=list)  # in the order taken
    cut: dict[str, int] = field(default_factory=dict)  # step key -> tokens it may use
    used: int = 0

    def chosen(self) -> set[str]:
        """Every step in the bundle, whole or cut."""
        return set(self.taken) | set(self.cut)


def pack(steps: Sequence[Step], capacity: int, min_cut: int = MIN_CUT_TOKENS) -> Plan:
    """Steps to take within `capacity` tokens, best value per token first, then one cut step."""
    by_key = {step.key: step for step in steps}
    order = sorted(steps, key=lambda s: (-s.density, s.key))
    plan = Plan()
    taken: set[str] = set()
    left = capacity

    def take(step: Step) -> None:
        nonlocal left
        plan.taken.append(step.key)
        taken.add(step.key)
        left -= step.tokens

    for step in order:
        if step.key in taken or step.tokens > left:
            continue
        needed = by_key.get(step.requires) if step.requires else None
        if needed is not None and needed.key not in taken:
            # A piece whose summary was not worth taking alone: take both if both fit.
            if needed.tokens + step.tokens > left:
                continue
            take(needed)
        take(step)

    # Fill the gap with the most valuable piece that did not fit, cut down to size.
    for step in order:
        if left < min_cut:
            break
        if step.key in taken or not step.divisible:
            continue
        needed = by_key.get(step.requires) if step.requires else None
        room = left - (needed.tokens if needed is not None and needed.key not in taken else 0)
        if room < max(min_cut, step.min_tokens + min_cut):
            continue
        if needed is not None and needed.key not in taken:
            take(needed)
        plan.cut[step.key] = room
        taken.add(step.key)
        left -= room
    plan.used = capacity - left
    return plan
