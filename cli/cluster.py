"""``ohgw-optuna worker`` and ``ohgw-optuna storage-proxy``: the pieces a cluster launches."""

from __future__ import annotations

import os
import socket
import time
import warnings

import click
import optuna

from ._common import (
    fail,
    set_storage_patience,
    storage_patience_option,
    study_config,
    user_errors,
)


@click.command()
@click.option("--study", "study", required=True, help="Study name in studies/ or a .toml path.")
@click.option(
    "--storage",
    envvar="OHGW_STORAGE_URL",
    default=None,
    help="Storage URL shared by all workers: postgresql://..., grpc://HOST:PORT (a "
    "storage-proxy), or a journal file on a shared folder (default: $OHGW_STORAGE_URL, else "
    "runs/STUDY.journal; the variable keeps a password out of process lists).",
)
@click.option(
    "--artifacts",
    envvar="OHGW_ARTIFACTS",
    default=None,
    help="Checkpoint store every worker sees: a shared folder or s3://BUCKET/PREFIX (default: "
    "$OHGW_ARTIFACTS, else the study file's `artifacts`, else runs/checkpoints).",
)
@click.option("--seed", type=int, default=None, help="Override the study file's seed.")
@click.option("--budget", multiple=True, help="Override the budget: n_trials=N, ...")
@click.option("--no-ohgw", is_flag=True, help="Run the vanilla twin (study name + '-vanilla').")
@click.option("--data-dir", default=None, help="Dataset folder.")
@click.option("--download", is_flag=True, help="Let torchvision download CIFAR-10.")
@click.option(
    "--index",
    type=int,
    default=None,
    help="Worker index (seeds the sampler); default from SLURM_PROCID, RANK, "
    "JOB_COMPLETION_INDEX or LOCAL_RANK.",
)
@click.option(
    "--device",
    default=None,
    help="cuda:K or cpu; default cuda:(LOCAL_RANK or SLURM_LOCALID) among the visible GPUs.",
)
@storage_patience_option
def worker(
    study: str,
    storage: str | None,
    artifacts: str | None,
    seed: int | None,
    budget: tuple[str, ...],
    no_ohgw: bool,
    data_dir: str | None,
    download: bool,
    index: int | None,
    device: str | None,
    storage_patience: float | None,
) -> None:
    """Run ONE worker in the foreground until the study's budget is spent (no supervisor).

    Start one per GPU from Slurm (srun, job arrays) or a Kubernetes Indexed Job; all of them,
    wherever they run, share the study's budget through the storage.
    """
    from optuna_ohgw.artifact_store import DEFAULT_ARTIFACTS, canonical
    from optuna_ohgw.placement import local_rank, worker_device, worker_index
    from optuna_ohgw.runner import (
        SigtermHandBack,
        WorkerGaveUpError,
        check_trainer,
        create_study,
        exit_now,
        interrupted_message,
        is_promotion,
        run_worker,
        summarize,
    )
    from optuna_ohgw.storage import default_url, open_storage, outage_error, redact

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    with user_errors():
        set_storage_patience(storage_patience)
        config = study_config(study, seed, no_ohgw, budget)
        url = storage or default_url(config.study_name)
        where = artifacts or config.artifacts or DEFAULT_ARTIFACTS
        check_trainer(config, data_dir=data_dir, download=download)
        if index is None:
            index, index_from = worker_index()
        else:
            index_from = "--index"
        if device is None:
            rank, rank_from = local_rank()
            device = worker_device()
            device_from = f"{rank_from}={rank}, CUDA_VISIBLE_DEVICES="
            device_from += os.environ.get("CUDA_VISIBLE_DEVICES", "(unset)")
        else:
            device_from = "--device"
        opened = open_storage(url)
        the_study = create_study(config, opened)
        if is_promotion(config):
            from optuna_ohgw.checkpoint import open_checkpoints

            open_checkpoints(the_study, where)  # a different store is refused here, in one line
        click.echo(
            f"worker {index} ({index_from}) on {socket.gethostname()} pid {os.getpid()}: "
            f"device {device} ({device_from}); study {config.study_name} on {redact(url)}"
            + (f"; checkpoints in {canonical(where)}" if is_promotion(config) else ""),
        )
        start = time.time()
        gave_up = None
        # Slurm (time limit, scancel) and Kubernetes (pod deletion) stop a worker with SIGTERM:
        # handle it like Ctrl-C, so the trial in flight is failed and retried, not left RUNNING,
        # within seconds (they send SIGKILL 30 s later).
        guard = SigtermHandBack(
            load_study=lambda: optuna.load_study(
                study_name=config.study_name, storage=open_storage(url)
            )
        ).install()
        try:
            run_worker(
                config,
                opened,
                index,
                data_dir=data_dir,
                download=download,
                device=device,
                artifacts=where,
            )
        except KeyboardInterrupt:
            exit_now(f"error: {interrupted_message(guard.hand_back(the_study))}")
        except WorkerGaveUpError as err:  # trials kept failing: say so after the summary
            gave_up = err
        except Exception:
            outage = outage_error(opened)
            if outage is not None:
                raise outage from None  # one line (Optuna may have raised another error after it)
            if not guard.signalled:
                raise
            # The interrupt surfaced as another error (e.g. Optuna's tell of the trial).
            exit_now(f"error: {interrupted_message(guard.hand_back(the_study))}")
        click.echo(summarize(the_study, time.time() - start).format())
        if gave_up is not None:
            fail(str(gave_up), code=1)


@click.command("storage-proxy")
@click.option(
    "--storage",
    envvar="OHGW_STORAGE_URL",
    required=True,
    help="RDB storage URL (postgresql://, mysql://); default $OHGW_STORAGE_URL.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=13000, show_default=True, help="Port to serve on.")
@click.option("--threads", default=16, show_default=True, help="Threads serving worker requests.")
def storage_proxy(storage: str, host: str, port: int, threads: int) -> None:
    """Serve an RDB storage over gRPC; workers use --storage grpc://HOST:PORT.

    One proxy holds a small pool of database connections for any number of workers (Optuna's
    GrpcStorageProxy, experimental); worth it when hundreds of workers would otherwise each hold
    their own connections to the database.
    """
    from concurrent.futures import ThreadPoolExecutor

    from optuna_ohgw import _optuna_compat as compat
    from optuna_ohgw.storage import is_grpc, is_journal, open_storage, redact

    if is_journal(storage) or is_grpc(storage):
        fail(
            f"the gRPC proxy serves RDB storages only (postgresql://, mysql://, sqlite:///), "
            f"not {redact(storage)}"
        )
    try:
        from optuna.storages import run_grpc_proxy_server
    except ImportError:
        fail("the storage proxy needs grpcio: pip install 'optuna-ohgw[grpc]'")
    with user_errors():
        # No heartbeats: a proxy's clients cannot send them (Optuna 5), and the RDB cache of
        # get_storage() keeps the database's load low, as Optuna recommends for the proxy.
        # A trial it has not read since it (re)started still takes its parameters.
        backend = compat.proxy_backend(open_storage(storage, heartbeat=False))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    click.echo(
        f"storage proxy for {redact(storage)} on grpc://{host}:{port} "
        f"(workers: --storage grpc://{host}:{port})",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            run_grpc_proxy_server(
                backend, host=host, port=port, thread_pool=ThreadPoolExecutor(threads)
            )
        except KeyboardInterrupt:
            pass
