"""Checkpoints of paused trials, kept as artifacts in one of Optuna's artifact stores."""

from __future__ import annotations

import io
import pathlib
import tempfile
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

import optuna
from optuna.artifacts import get_all_artifact_meta, upload_artifact
from optuna.artifacts.exceptions import ArtifactNotFound
from optuna.trial import TrialState

from optuna_ohgw import _optuna_compat as compat
from optuna_ohgw.artifact_store import FolderArtifactStore, is_marker

if TYPE_CHECKING:
    from optuna.artifacts._protocol import ArtifactStore

FILENAME_PREFIX = "ohgw-checkpoint-"
"""Artifact file names of checkpoints: ``ohgw-checkpoint-config-<c>-epoch-<e>.pt``."""


class CheckpointError(RuntimeError):
    """A checkpoint that should exist is missing or unreadable; the segment fails, loudly."""


class CheckpointStore:
    """Saves and loads the training state of paused configurations in an artifact store.

    Each pause uploads a new artifact (``upload_artifact`` on the RUNNING segment, so the
    dashboard shows the checkpoint on the trial that wrote it) and returns its id, which the
    continuation trial records; the artifact a resumed configuration no longer needs is removed,
    and :meth:`sweep` removes whatever is left when the study ends. A worker killed mid-upload
    never leaves a half-written checkpoint that anything would read: the continuation names the
    artifact only after the upload has finished.

    Args:
        store: An Optuna artifact store, or a folder (``FileSystemArtifactStore`` on
            ``store/study_name``, the single-machine default).
        study_name: The study's subfolder when ``store`` is a folder.
    """

    def __init__(
        self, store: ArtifactStore | str | pathlib.Path, study_name: str | None = None
    ) -> None:
        if isinstance(store, (str, pathlib.Path)):
            folder = pathlib.Path(store) / (study_name or "")
            folder.mkdir(parents=True, exist_ok=True)
            store = FolderArtifactStore(folder)
        self.store = store

    def save(self, trial: optuna.Trial, config: int, epoch: int, state: dict[str, Any]) -> str:
        """Upload ``state`` as the checkpoint of ``config`` at ``epoch``; return its id."""
        import torch

        name = f"{FILENAME_PREFIX}config-{config}-epoch-{epoch}.pt"
        with tempfile.TemporaryDirectory(prefix="ohgw-") as scratch:
            path = pathlib.Path(scratch) / name
            torch.save({"epoch": epoch, "state": state}, path)
            return upload_artifact(
                artifact_store=self.store,
                file_path=str(path),
                study_or_trial=trial,
                mimetype="application/octet-stream",
            )

    def load(self, artifact_id: str, config: int) -> dict[str, Any]:
        """The checkpoint ``{"epoch", "state"}``; :class:`CheckpointError` if it cannot be read."""
        import torch

        try:
            with self.store.open_reader(artifact_id) as reader:
                data = reader.read()
        except ArtifactNotFound:
            raise CheckpointError(
                f"checkpoint of configuration {config} is missing (artifact {artifact_id}); the "
                "segment fails instead of silently restarting from scratch"
            ) from None
        except Exception as err:  # noqa: BLE001 - OSError, botocore errors: all unreadable
            raise CheckpointError(
                f"checkpoint of configuration {config} cannot be read (artifact {artifact_id}: "
                f"{type(err).__name__}: {str(err)[:200]})"
            ) from None
        try:
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
        except Exception as err:  # noqa: BLE001 - any undecodable artifact is the same problem
            raise CheckpointError(
                f"checkpoint of configuration {config} is corrupt (artifact {artifact_id}: "
                f"{type(err).__name__})"
            ) from None

    def delete(self, artifact_id: str) -> None:
        """Remove a checkpoint; one already gone is fine."""
        try:
            self.store.remove(artifact_id)
        except ArtifactNotFound:
            pass

    def sweep(self, study: optuna.Study, keep: Collection[str] = ()) -> int:
        """Remove the checkpoints uploaded on the study's trials, except ids in ``keep``
        (those a WAITING or RUNNING segment still resumes from); return how many ids. A store
        that lists its ids (a folder, S3) is listed too: a checkpoint whose upload finished
        but whose record never reached the database (an outage, a death in between) goes as
        well."""
        removed: set[str] = set()
        for t in study.get_trials(deepcopy=False):
            if t.state == TrialState.WAITING:
                continue  # a WAITING trial uploads nothing
            for meta in get_all_artifact_meta(t, storage=compat.storage_of(study)):
                if meta.filename.startswith(FILENAME_PREFIX) and meta.artifact_id not in keep:
                    self.delete(meta.artifact_id)
                    removed.add(meta.artifact_id)
        lister = getattr(self.store, "list_ids", None)
        for artifact_id in (lister() if lister is not None else None) or []:
            if (
                artifact_id not in keep
                and artifact_id not in removed
                and not is_marker(artifact_id)
            ):
                self.delete(artifact_id)
                removed.add(artifact_id)
        return len(removed)


def open_checkpoints(study: optuna.Study, url: str) -> CheckpointStore:
    """The checkpoints of ``study`` in the artifact store at ``url`` (a folder or ``s3://``),
    after checking that it is the store the study recorded (see
    :func:`~optuna_ohgw.artifact_store.bind_study`); errors are one-line
    :class:`~optuna_ohgw.artifact_store.ArtifactStoreError`."""
    from optuna_ohgw.artifact_store import bind_study, open_artifact_store

    store = open_artifact_store(url, study.study_name)
    bind_study(study, store, url)
    return CheckpointStore(store)
