"""Issue 27, part 6: how much ohgw-normalized's primary result rests on the exact hard target
and on single seeds (Fashion-MNIST, ASHA at eight virtual workers, epochs clock).

From the repository root, after ``bash benchmarks/issue19/report.sh`` has restored the journals:

    .venv/bin/python benchmarks/issue27/primary_fragility.py

Prints issue 19's primary family (:func:`optuna_ohgw.evidence.question.family_comparisons`,
Holm over its 8 comparisons) with Fashion-MNIST's hard target moved to 0.85-0.87, and the
family's Holm p with each seed left out in turn (hard target 0.86).
"""

from __future__ import annotations

from optuna_ohgw.evidence import summary as sm
from optuna_ohgw.evidence.report import load_cells
from optuna_ohgw.storage import open_storage

JOURNALS = ("runs/issue19/fashion-w8.journal", "runs/issue19/mnist1d-w8.journal")


def primary(cells, hard: float, n_boot: int = 2000):  # type: ignore[no-untyped-def]
    targets = {"fashion": (hard,), "mnist1d": (0.98,)}
    rows = sm.target_rows(cells, targets)
    vs = sm.compare_at_targets(rows, n_boot=n_boot, clock="epochs")
    warm = set(sm.PRIMARY_ARMS)
    ctl = sm.compare_at_targets(rows, sm.CONTROL, variants=warm, n_boot=n_boot, clock="epochs")
    return sm.family_comparisons(sm.ISSUE19, vs, ctl, targets)


def main() -> None:
    cells = [
        c
        for j in JOURNALS
        for c in load_cells(open_storage(f"journal:{j}", heartbeat=False), finished_only=True)
    ]
    print("hard target | arm | against | ratio [95% CI] | p | primary Holm | verdict")
    for hard in (0.85, 0.855, 0.86, 0.865, 0.87):
        for c in primary(cells, hard):
            if c.task == "fashion":
                r = c.ratio[c.clock]
                print(
                    f"{hard:g} | {c.variant} | {c.reference} | {r.ratio:.3f} "
                    f"[{r.low:.3f}, {r.high:.3f}] | {c.p:.2g} | {c.p_holm:.2g} | {sm.verdict(c)}"
                )
    print("seed left out | primary Holm of ohgw-normalized against vanilla, random-sign")
    for seed in sorted({c.seed for c in cells}):
        fam = primary([c for c in cells if c.seed != seed], 0.86, n_boot=200)
        holm = {
            c.reference: c.p_holm
            for c in fam
            if c.task == "fashion" and c.variant == "ohgw-normalized"
        }
        print(f"{seed} | {holm[sm.BASELINE]:.3g}, {holm[sm.CONTROL]:.3g}")


if __name__ == "__main__":
    main()
