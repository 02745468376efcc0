"""One simulated worker's view of the shared Optuna storage: every call goes to the real storage;
an epoch report first waits for the worker's turn on the virtual clock (:class:`Baton`)."""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import Any

from optuna.distributions import BaseDistribution
from optuna.storages import BaseStorage
from optuna.study import StudyDirection
from optuna.study._frozen import FrozenStudy
from optuna.trial import FrozenTrial, TrialState

from optuna_ohgw.virtual._baton import Baton

VIRTUAL_ATTR = "ohgw.virtual"
"""Trial system attr written when a trial ends in a virtual run: ``{"worker", "clock",
"start", "start_order", "ends", "order"}``: the worker, the clock kind, the virtual time the
trial started at and the number of events before it, the virtual time of each reported epoch
and each report's global event number (1, 2, ...). The
evidence places the trial's epochs at these times instead of the machine's timestamps."""


class VirtualWorkerStorage(BaseStorage):
    """Worker ``worker``'s storage in a virtual run: the real ``storage`` with a turn taken on
    ``baton`` before each epoch report (``set_trial_intermediate_value``).

    The worker body runs unchanged on it (``optuna.load_study(storage=view, ...)``). Before a
    report the worker has trained its epoch; the report, the pruner's decision that follows it
    and everything the worker does up to its next report happen when the worker's clock is the
    earliest, so every read of the storage sees exactly the events that precede it in virtual
    time.

    Args:
        storage: The real, shared storage.
        baton: The run's baton.
        worker: This worker's index.
    """

    def __init__(self, storage: BaseStorage, baton: Baton, worker: int) -> None:
        self._inner = storage
        self._baton = baton
        self._worker = worker
        self._records: dict[int, dict[str, Any]] = {}

    def idle(self) -> None:
        """Nothing to do until another worker's next event (the promotion loop's poll)."""
        self._baton.idle(self._worker)

    def _started(self, trial_id: int) -> None:
        self._records[trial_id] = {
            "worker": self._worker,
            "clock": self._baton.clock,
            "start": self._baton.now(self._worker),
            "start_order": self._baton.events,
            "ends": [],
            "order": [],
        }

    # ----- the calls that carry virtual time --------------------------------------------------

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        trial_id = self._inner.create_new_trial(study_id, template_trial)
        if template_trial is None or template_trial.state == TrialState.RUNNING:
            self._started(trial_id)
        return trial_id

    def set_trial_intermediate_value(
        self, trial_id: int, step: int, intermediate_value: float
    ) -> None:
        order = self._baton.step(self._worker)
        record = self._records.get(trial_id)
        if record is not None:
            record["ends"].append(self._baton.now(self._worker))
            record["order"].append(order)
        self._inner.set_trial_intermediate_value(trial_id, step, intermediate_value)

    def set_trial_state_values(
        self, trial_id: int, state: TrialState, values: Sequence[float] | None = None
    ) -> bool:
        if state.is_finished() and trial_id in self._records:
            self._inner.set_trial_system_attr(trial_id, VIRTUAL_ATTR, self._records.pop(trial_id))
        changed = self._inner.set_trial_state_values(trial_id, state, values)
        if changed and state == TrialState.RUNNING:
            self._started(trial_id)
        return changed

    # ----- everything else goes straight through -----------------------------------------------

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def create_new_study(
        self, directions: Sequence[StudyDirection], study_name: str | None = None
    ) -> int:
        return self._inner.create_new_study(directions, study_name)

    def delete_study(self, study_id: int) -> None:
        self._inner.delete_study(study_id)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        self._inner.set_study_user_attr(study_id, key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        self._inner.set_study_system_attr(study_id, key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        return self._inner.get_study_id_from_name(study_name)

    def get_study_name_from_id(self, study_id: int) -> str:
        return self._inner.get_study_name_from_id(study_id)

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        return self._inner.get_study_directions(study_id)

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return self._inner.get_study_user_attrs(study_id)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return self._inner.get_study_system_attrs(study_id)

    def get_all_studies(self) -> list[FrozenStudy]:
        return self._inner.get_all_studies()

    def set_trial_param(
        self,
        trial_id: int,
        param_name: str,
        param_value_internal: float,
        distribution: BaseDistribution,
    ) -> None:
        self._inner.set_trial_param(trial_id, param_name, param_value_internal, distribution)

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        return self._inner.get_trial_id_from_study_id_trial_number(study_id, trial_number)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._inner.set_trial_user_attr(trial_id, key, value)

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        self._inner.set_trial_system_attr(trial_id, key, value)

    def get_trial(self, trial_id: int) -> FrozenTrial:
        return self._inner.get_trial(trial_id)

    def get_all_trials(
        self,
        study_id: int,
        deepcopy: bool = True,
        states: Container[TrialState] | None = None,
    ) -> list[FrozenTrial]:
        return self._inner.get_all_trials(study_id, deepcopy=deepcopy, states=states)
