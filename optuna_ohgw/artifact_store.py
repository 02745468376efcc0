"""Where a study keeps its checkpoints: one of Optuna's artifact stores, named by a URL.

* a folder (the default ``runs/checkpoints``): ``FileSystemArtifactStore`` on ``FOLDER/STUDY``;
  several machines need the same shared folder (NFS, Lustre, ...);
* ``s3://BUCKET/PREFIX``: ``Boto3ArtifactStore`` under ``PREFIX/STUDY/``, for S3 and
  S3-compatible servers; the endpoint and credentials come from boto3's usual environment
  variables (``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ...).

The study records where its checkpoints live (:func:`bind_study`), so a worker that joins with
another store is refused at start instead of failing every hand-over later.
"""

from __future__ import annotations

import contextlib
import io
import json
import pathlib
import uuid
from typing import TYPE_CHECKING, Any, BinaryIO

import optuna
from optuna.artifacts import Boto3ArtifactStore, FileSystemArtifactStore
from optuna.artifacts.exceptions import ArtifactNotFound

from optuna_ohgw import _optuna_compat as compat

if TYPE_CHECKING:
    from optuna.artifacts._protocol import ArtifactStore

DEFAULT_ARTIFACTS = "runs/checkpoints"
LOCATION_ATTR = "ohgw.artifacts"
"""Study user attr: the canonical URL of the study's artifact store (shown by the dashboard)."""
TOKEN_ATTR = "ohgw:artifacts_token"
"""Study system attr: the study's random token, recorded when it is created; its marker object
(``ohgw-store-TOKEN.json``) in a store proves that the store is the study's own."""
_MARKER = "ohgw-store-{token}.json"


class ArtifactStoreError(RuntimeError):
    """The artifact store cannot be opened or is not the study's; the message says what to do."""


def is_marker(artifact_id: str) -> bool:
    """Whether ``artifact_id`` is a store's study marker (see :func:`bind_study`), not a
    checkpoint."""
    prefix, _, _ = _MARKER.partition("{")
    return artifact_id.startswith(prefix)


def is_s3(url: str) -> bool:
    return url.startswith("s3://")


def canonical(url: str) -> str:
    """``url`` as the study records it: ``s3://bucket/prefix`` or an absolute folder."""
    if is_s3(url):
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        prefix = prefix.strip("/")
        return f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
    return str(pathlib.Path(url).expanduser().resolve())


class FolderArtifactStore(FileSystemArtifactStore):
    """``FileSystemArtifactStore`` on one study's folder that can list its artifact ids (the
    final sweep removes checkpoints whose metadata never reached the database)."""

    def __init__(self, folder: str | pathlib.Path) -> None:
        super().__init__(folder)
        self.folder = pathlib.Path(folder)

    def list_ids(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir() if p.is_file())


class PrefixedArtifactStore:
    """An artifact store whose artifact ids live under ``prefix`` of another store's keys.

    ``Boto3ArtifactStore`` writes each artifact at the bucket's top level; this keeps a study's
    objects under ``PREFIX/STUDY/`` so that one bucket serves many studies.

    Args:
        store: The store that holds the objects.
        prefix: Prepended to every artifact id (e.g. ``"runs/my-study/"``).
    """

    def __init__(
        self, *, store: ArtifactStore, prefix: str, client: Any = None, bucket: str = ""
    ) -> None:
        self.store = store
        self.prefix = prefix
        self._client, self._bucket = client, bucket

    def list_ids(self) -> list[str] | None:
        """The artifact ids under the prefix (``None`` without the S3 client to list them)."""
        if self._client is None:
            return None
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=self.prefix
        )
        keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
        return sorted(
            k.removeprefix(self.prefix) for k in keys if "/" not in k[len(self.prefix) :]
        )

    def open_reader(self, artifact_id: str) -> BinaryIO:
        return self.store.open_reader(self.prefix + artifact_id)

    def write(self, artifact_id: str, content_body: BinaryIO) -> None:
        self.store.write(self.prefix + artifact_id, content_body)

    def remove(self, artifact_id: str) -> None:
        self.store.remove(self.prefix + artifact_id)


def open_artifact_store(url: str, study_name: str) -> ArtifactStore:
    """The artifact store of ``study_name`` at ``url``; :class:`ArtifactStoreError` in one line."""
    if not is_s3(url):
        folder = pathlib.Path(canonical(url)) / study_name
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ArtifactStoreError(
                f"cannot create the checkpoint folder {folder}: {err.strerror}"
            ) from None
        return FolderArtifactStore(folder)
    bucket, _, prefix = canonical(url).removeprefix("s3://").partition("/")
    if not bucket:
        raise ArtifactStoreError(f"--artifacts {url}: write s3://BUCKET/PREFIX")
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise ArtifactStoreError(
            f"--artifacts {url} needs boto3: pip install 'optuna-ohgw[s3]'"
        ) from None
    client = boto3.client("s3")
    try:
        client.head_bucket(Bucket=bucket)
    except (BotoCoreError, ClientError) as err:
        endpoint = client.meta.endpoint_url
        raise ArtifactStoreError(
            f"cannot use S3 bucket {bucket!r} at {endpoint}: {str(err).splitlines()[0][:200]}. "
            "Check that the bucket exists, AWS_ENDPOINT_URL and the credentials "
            "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)."
        ) from None
    keys = f"{prefix}/{study_name}/" if prefix else f"{study_name}/"
    return PrefixedArtifactStore(
        store=Boto3ArtifactStore(bucket, client=client), prefix=keys, client=client, bucket=bucket
    )


def clear_study(url: str, study_name: str) -> int:
    """Remove every object of ``study_name``'s part of the store at ``url``: its checkpoints and
    its marker. For a study about to be deleted and created again (a virtual benchmark cell
    that reruns whole), which :func:`bind_study` would otherwise refuse; call it before the
    deletion, so a kill between the two leaves a study that is cleared again. Returns how many
    objects were removed."""
    store = open_artifact_store(url, study_name)
    ids = store.list_ids() or []  # type: ignore[attr-defined]
    for artifact_id in ids:
        store.remove(artifact_id)
    if isinstance(store, FolderArtifactStore):
        with contextlib.suppress(OSError):  # something that is no artifact: left alone
            store.folder.rmdir()
    return len(ids)


def record_token(study: optuna.Study) -> str:
    """Give a new study its random token (:data:`TOKEN_ATTR`); call it once, on creation."""
    token = uuid.uuid4().hex
    compat.storage_of(study).set_study_system_attr(compat.study_id(study), TOKEN_ATTR, token)
    return token


def study_token(study: optuna.Study) -> str | None:
    """The study's token, unique to it in its database (``None`` until it has one)."""
    storage = compat.storage_of(study)
    return storage.get_study_system_attrs(compat.study_id(study)).get(TOKEN_ATTR)


def _markers(url: str, study_name: str) -> list[str]:
    """The names of the marker objects in the study's part of the store at ``url``."""
    if not is_s3(url):
        folder = pathlib.Path(canonical(url)) / study_name
        return sorted(p.name for p in folder.glob(_MARKER.format(token="*")))
    import boto3

    bucket, _, prefix = canonical(url).removeprefix("s3://").partition("/")
    keys = f"{prefix}/{study_name}/" if prefix else f"{study_name}/"
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=keys + "ohgw-store-")
    return sorted(o["Key"].removeprefix(keys) for o in listed.get("Contents", []))


def bind_study(study: optuna.Study, store: ArtifactStore, url: str) -> None:
    """Record ``url`` as the study's artifact store, or check that ``store`` is the recorded one.

    The study's token is random, recorded when the study is created (:func:`record_token`;
    here for a study made without it), so it is unique to the study in its database. The first
    worker writes a marker object named after it into its store and records the store on the
    study; a later worker must find that marker in its own store. So a machine that would keep
    checkpoints elsewhere (a relative folder, a folder that is not shared, another bucket) is
    refused at start, with one line that says which store to pass, and so is a same-named study
    of another database (or one deleted and created again) whose marker is in the store.
    """
    where = canonical(url)
    token = study_token(study) or record_token(study)
    marker = _MARKER.format(token=token)
    if recorded_location(study) is None:
        others = [name for name in _markers(url, study.study_name) if name != marker]
        if others:
            raise ArtifactStoreError(
                f"the checkpoints of {where} / {study.study_name} belong to another study named "
                f"{study.study_name!r} (marker {others[0]}: another database, or a study deleted "
                "since): pass another --artifacts, or delete that folder if its study is gone"
            )
        body = json.dumps({"study": study.study_name, "token": token}).encode()
        store.write(marker, io.BytesIO(body))
        study.set_user_attr(LOCATION_ATTR, where)
    try:
        store.open_reader(marker).close()
    except ArtifactNotFound:
        recorded = study.user_attrs.get(LOCATION_ATTR, "?")
        raise ArtifactStoreError(
            f"study {study.study_name!r} keeps its checkpoints in {recorded}, not in {where}: "
            f"pass --artifacts {recorded} (the same store, as this machine sees it)"
        ) from None


def recorded_location(study: optuna.Study) -> str | None:
    """The artifact store URL the study recorded, if any."""
    return study.user_attrs.get(LOCATION_ATTR)
