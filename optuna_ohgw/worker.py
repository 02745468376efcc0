"""``python -m optuna_ohgw.worker PAYLOAD``: one worker process started by :func:`run_study`.

The payload (JSON) holds the resolved configuration (:func:`~optuna_ohgw.studyfile.config_to_dict`,
overrides applied) and the worker's settings; the storage URL comes from the
``OHGW_STORAGE_URL`` environment variable so that no password appears in a process list. A user
error (missing dataset, unreachable storage) exits with code 2 and one line on stderr.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str] | None = None) -> int:
    payload = json.loads((argv if argv is not None else sys.argv[1:])[0])
    threads = int(payload.get("threads") or 0)
    if threads:
        import torch

        torch.set_num_threads(threads)
    import optuna

    from optuna_ohgw.artifact_store import ArtifactStoreError
    from optuna_ohgw.runner import run_worker
    from optuna_ohgw.storage import StorageError, open_storage
    from optuna_ohgw.studyfile import StudyFileError, config_from_dict
    from optuna_ohgw.tasks import DatasetMissingError

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        config = config_from_dict(payload["config"])
        storage = open_storage(os.environ["OHGW_STORAGE_URL"])
        run_worker(
            config,
            storage,
            int(payload["worker"]),
            data_dir=payload.get("data_dir"),
            download=bool(payload.get("download")),
            artifacts=payload["artifacts"],
        )
    except (StudyFileError, StorageError, DatasetMissingError, ArtifactStoreError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
