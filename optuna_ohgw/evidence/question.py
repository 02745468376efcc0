"""The primary question of a grid and the default step rule it decides, both declared before
the data.

A summary's p values are exploratory except for one family fixed in advance, the *primary
question* (:class:`Question`): some arms against ``vanilla`` and ``random-sign`` at each named
group's hardest target, configuration 0 in, Holm-adjusted over that family alone. The default
step rule is decided once, by the rule the question declares (:func:`decide_step_rule`), when
every group the rule names has the planned number of paired seeds; an interim look decides
nothing (no optional stopping).

Two questions were declared (:data:`QUESTIONS`):

* :data:`ISSUE19`: ASHA (TPE) at eight virtual workers with index ties, Fashion-MNIST CNN and
  MNIST-1D (fixed 2026-12-02 in commit 866bb04). ``line-search`` becomes the default only if it
  pays off on both, with the family's Holm p.
* :data:`ISSUE27`: the Fashion-MNIST ViT (AdamW recipe), ASHA (TPE) at eight virtual workers
  with seeded ties (``reports/issue27/PLAN.md``, 2026-12-06). The rule looks at three ASHA
  tasks at eight workers, Holm over its own three comparisons: ``line-search`` becomes the
  default if it pays off on at least two and is significantly slower on none.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Literal

from optuna_ohgw.evidence.comparisons import (
    CONTROL,
    PRIMARY_ARMS,
    TargetComparison,
    at_hard_target,
    with_holm,
)
from optuna_ohgw.evidence.report import ALPHA, BASELINE, MAX_RATIO

Group = tuple[str, str]
"""``(task, scheduler label)``, e.g. ``("fashion", "asha@8r")``."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class Question:
    """A primary family and the default step rule it decides, fixed before the data.

    Args:
        name: How the CLI names it (``report --question NAME``).
        declared: When and where it was fixed (date, commit, file).
        family: The groups whose comparisons form the primary family.
        arms: The arms compared, each against ``vanilla`` and ``random-sign``.
        rule_groups: The groups the default step rule looks at (``line-search`` against
            vanilla at each one's hardest target).
        rule_wins: On how many of them ``line-search`` must pay off.
        rule_holm: ``"family"``: the pay-off test uses the primary family's Holm p (each rule
            group must be in the family); ``"rule"``: Holm over the rule's own comparisons.
        rule_no_slower: Also require that ``line-search`` is significantly slower (ratio above
            1, raw p below ``ALPHA``) on none of the rule's groups.
    """

    name: str
    declared: str
    family: tuple[Group, ...]
    rule_groups: tuple[Group, ...]
    rule_wins: int
    rule_holm: Literal["family", "rule"] = "rule"
    rule_no_slower: bool = False
    arms: tuple[str, ...] = PRIMARY_ARMS

    @property
    def rule_text(self) -> str:
        """The rule in one sentence."""
        groups = ", ".join(f"{t} {g}" for t, g in self.rule_groups)
        count = (
            "in every one of the groups"
            if self.rule_wins == len(self.rule_groups)
            else f"in at least {self.rule_wins} of the {len(self.rule_groups)} groups"
        )
        holm = (
            "the primary family's Holm p"
            if self.rule_holm == "family"
            else "Holm over these comparisons"
        )
        slower = (
            f"; and on none of them is it significantly slower (ratio above 1, raw p < {ALPHA})"
            if self.rule_no_slower
            else ""
        )
        return (
            "`line-search` becomes the default step rule if, against vanilla at the hard "
            f"target, its ratio of medians is at most {MAX_RATIO} with p < {ALPHA} ({holm}) "
            f"{count} {groups}{slower}; otherwise `normalized` stays."
        )


ISSUE19 = Question(
    name="issue19",
    declared="2026-12-02, commit 866bb04 (optuna_ohgw/evidence/comparisons.py)",
    family=(("fashion", "asha@8"), ("mnist1d", "asha@8")),
    rule_groups=(("fashion", "asha@8"), ("mnist1d", "asha@8")),
    rule_wins=2,
    rule_holm="family",
)
"""Issue 19's question, fixed on 2026-12-02 in commit 866bb04, whose regenerated summary already
showed 4 paired eight-worker seeds on Fashion-MNIST (too few for any test, but with
line-search's ratio visible: 0.604x vanilla, 0.647x random-sign at 0.86) and none on MNIST-1D;
its notes said 3. Its cells broke ties at one virtual time in favour of the lower worker, so
configuration 0 was never stopped (``asha@8``). Every other comparison of a summary is
exploratory: a family whose size grows with every table the report adds cannot decide a
default, because adding a table would change the decision."""
ISSUE27 = Question(
    name="issue27",
    declared=(
        "2026-12-06, commit 0ac77ce (reports/issue27/PLAN.md), before any cell of issue 27 ran"
    ),
    family=(("fashion-vit-asha", "asha@8r"),),
    rule_groups=(
        ("mnist1d", "asha@8"),
        ("fashion", "asha@8r"),
        ("fashion-vit-asha", "asha@8r"),
    ),
    rule_wins=2,
    rule_holm="rule",
    rule_no_slower=True,
)
"""Issue 27's question (``reports/issue27/PLAN.md``): the AdamW vision transformer where users
train, eight virtual workers breaking ties in a seeded order (``asha@8r``); its rule also reads
MNIST-1D (issue 19's ``asha@8``, already run) and the Fashion-MNIST CNN rerun with seeded ties."""
QUESTIONS: dict[str, Question] = {q.name: q for q in (ISSUE19, ISSUE27)}
"""The declared questions by name; the last declared (:data:`ISSUE27`) is the default."""


def family_comparisons(
    question: Question,
    vs_vanilla: Sequence[TargetComparison],
    vs_control: Sequence[TargetComparison],
    targets: Mapping[str, Sequence[float]],
    *,
    groups: Sequence[Group] | None = None,
) -> list[TargetComparison]:
    """The question's primary family: each of its arms against vanilla, then against
    random-sign, at the hardest target of each group of ``groups`` (default: its
    :attr:`~Question.family`), configuration 0 in, Holm-adjusted over these alone."""
    groups = question.family if groups is None else groups
    picked = at_hard_target(vs_vanilla, targets, arms=question.arms, groups=groups)
    picked += at_hard_target(
        [c for c in vs_control if c.reference == CONTROL],
        targets,
        arms=question.arms,
        groups=groups,
    )
    (adjusted,) = with_holm(picked)
    return adjusted


@dataclasses.dataclass(frozen=True, kw_only=True)
class StepRuleDecision:
    """What :func:`decide_step_rule` found."""

    question: Question
    comparisons: tuple[TargetComparison, ...]
    """``line-search`` against vanilla in each rule group that has it, with the deciding p."""
    pending: tuple[str, ...]
    """The rule groups short of the planned paired seeds (``"task group: n of N ..."``)."""
    wins: tuple[Group, ...]
    """Where it pays off (ratio <= 0.85, deciding p < ``ALPHA``)."""
    slower: tuple[Group, ...]
    """Where it is significantly slower (ratio above 1, raw p < ``ALPHA``)."""
    lost: tuple[Group, ...] = ()
    """Groups with their planned seeds where it cannot pay off, whatever the others show: its
    ratio of medians is above ``MAX_RATIO`` or undefined (Holm can only raise a p)."""

    @property
    def decided(self) -> bool:
        return not self.pending

    @property
    def foregone(self) -> bool:
        """Not decided yet, but the outcome is fixed: ``line-search`` cannot become the
        default, since too few groups can still pay off, or (with
        :attr:`~Question.rule_no_slower`) a group with its planned seeds is significantly
        slower. The rule is still applied only once every group is complete."""
        q = self.question
        hopeless = len(q.rule_groups) - len(self.lost) < q.rule_wins
        return not self.decided and (hopeless or bool(q.rule_no_slower and self.slower))

    @property
    def line_search(self) -> bool:
        """Whether ``line-search`` becomes the default (only once decided)."""
        q = self.question
        return (
            self.decided
            and len(self.wins) >= q.rule_wins
            and not (q.rule_no_slower and self.slower)
        )


def decide_step_rule(
    question: Question,
    vs_vanilla: Sequence[TargetComparison],
    targets: Mapping[str, Sequence[float]],
    planned_seeds: int,
    *,
    family: Sequence[TargetComparison] = (),
) -> StepRuleDecision:
    """Apply the question's rule to ``line-search`` against vanilla at each rule group's hard
    target (configuration 0 in, on each comparison's deciding clock).

    Rule: nothing is decided while a rule group lacks the comparison or has fewer than
    ``planned_seeds`` paired seeds. Then ``line-search`` *pays off* in a group when its ratio
    of medians is at most ``MAX_RATIO`` (0.85) and its p is below ``ALPHA``: the Holm p of
    ``family`` (:func:`family_comparisons`) where :attr:`~Question.rule_holm` is
    ``"family"``, else Holm over the rule's comparisons alone. It becomes the default when it
    pays off in at least :attr:`~Question.rule_wins` groups and, where
    :attr:`~Question.rule_no_slower`, is significantly slower (ratio above 1, raw p below
    ``ALPHA``) in none. Before that, the decision says when its outcome is already fixed
    (:attr:`StepRuleDecision.foregone`), from the groups that have their planned seeds only.
    """
    picked = [
        c
        for c in at_hard_target(
            vs_vanilla, targets, arms=("line-search",), groups=question.rule_groups
        )
        if c.reference == BASELINE
    ]
    if question.rule_holm == "family":
        held = {(c.task, c.scheduler, c.variant, c.reference): c.p_holm for c in family}
        picked = [
            dataclasses.replace(c, p_holm=held.get((c.task, c.scheduler, c.variant, c.reference)))
            for c in picked
        ]
        picked = [c for c in picked if c.p_holm is not None or c.p is None]
    else:
        (picked,) = with_holm(picked)
    by = {(c.task, c.scheduler): c for c in picked}
    complete = [g for g in question.rule_groups if g in by and by[g].n_paired >= planned_seeds]
    pending = tuple(
        f"{t} {g}: {by[(t, g)].n_paired} of {planned_seeds} paired seeds"
        if (t, g) in by
        else f"{t} {g}: not run"
        for t, g in question.rule_groups
        if (t, g) not in complete
    )
    ratio = {g: by[g].ratio[by[g].clock].ratio for g in by}
    wins = tuple(g for g in question.rule_groups if g in by and by[g].pays_off)
    slower = tuple(
        g
        for g in complete
        if (r := ratio[g]) is not None and r > 1.0 and by[g].p is not None and by[g].p < ALPHA
    )
    lost = tuple(g for g in complete if (r := ratio[g]) is None or r > MAX_RATIO)
    return StepRuleDecision(
        question=question,
        comparisons=tuple(picked),
        pending=pending,
        wins=wins,
        slower=slower,
        lost=lost,
    )
