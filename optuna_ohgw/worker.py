"""``python -m optuna_ohgw.worker PAYLOAD``: one worker process started by :func:`run_study`.

The payload (JSON) holds the resolved configuration (:func:`~optuna_ohgw.studyfile.config_to_dict`,
overrides applied) and the worker's settings; the storage URL comes from the
``OHGW_STORAGE_URL`` environment variable so that no password appears in a process list.

Exit codes: 0 when the budget is spent, 2 for a user error (missing dataset, unreachable
storage; one line on stderr), 3 when the worker gave up because its trials kept failing, 130
when interrupted (SIGTERM or SIGINT: the trial it was running is handed back, within
:data:`~optuna_ohgw.runner.HAND_BACK_SECONDS`; whichever of the main thread, the watchdog and
the deadline timer ends it). A worker ends with its parent: if the parent
``ohgw-optuna run`` dies, even by SIGKILL, the worker gets SIGTERM (Linux) or notices within
seconds (elsewhere).
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys
import threading
import time

EXIT_USER_ERROR = 2
EXIT_GAVE_UP = 3
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int, poll_seconds: float = 2.0) -> None:
    """End this process when ``parent_pid`` (the process that started it) is gone."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:  # platforms without a parent-death signal
        while os.getppid() == parent_pid:
            time.sleep(poll_seconds)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="ohgw-parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    payload = json.loads((argv if argv is not None else sys.argv[1:])[0])
    if payload.get("parent_pid"):
        die_with_parent(int(payload["parent_pid"]))
    threads = int(payload.get("threads") or 0)
    if threads:
        import torch

        torch.set_num_threads(threads)
    import optuna

    from optuna_ohgw.artifact_store import ArtifactStoreError
    from optuna_ohgw.runner import SigtermHandBack, WorkerGaveUpError, exit_now, run_worker
    from optuna_ohgw.storage import StorageError, open_storage, outage_error
    from optuna_ohgw.studyfile import StudyFileError, config_from_dict
    from optuna_ohgw.tasks import DatasetMissingError

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = storage = guard = None
    try:
        config = config_from_dict(payload["config"])
        storage = open_storage(os.environ["OHGW_STORAGE_URL"])

        def study(url: str | None = None) -> optuna.Study:
            opened = storage if url is None else open_storage(url)
            return optuna.load_study(study_name=config.study_name, storage=opened)

        # The parent stops its workers with SIGTERM (Ctrl-C, its own SIGTERM, its death).
        url = os.environ["OHGW_STORAGE_URL"]
        guard = SigtermHandBack(load_study=lambda: study(url)).install()
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
        return EXIT_USER_ERROR
    except WorkerGaveUpError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_GAVE_UP
    except KeyboardInterrupt:
        if guard is not None:
            guard.hand_back(study())
        exit_now()  # 130: EXIT_INTERRUPTED
    except Exception:
        outage = None if storage is None else outage_error(storage)
        if outage is not None:  # Optuna may have raised another error after it
            print(f"error: {outage}", file=sys.stderr)
            return EXIT_USER_ERROR
        if guard is None or not guard.signalled:
            raise
        guard.hand_back(study())  # the interrupt surfaced as another error (Optuna's tell)
        exit_now()  # 130: EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
