"""Ray backend of the sweep executor interface: one Ray task per run, CPUs and GPUs as task resources.

    from mixlaw.train.ray_executor import RayExecutor
    table = run_sweep(runs, "out/", executor=RayExecutor(address="auto", gpus_per_run=1))

The sweep submits `execute_run(spec_dict, run_dir)`; the run's real output is its folder, so the folder must be
on a file system shared by the driver and the Ray workers (a local disk for a one-machine Ray, NFS/Lustre for a
cluster). Interrupted runs resume from their checkpoints exactly as with the local pool. Ray is imported lazily:
`pip install 'mixlaw[ray]'`.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
from collections.abc import Callable
from typing import Any

from mixlaw.errors import MixlawInputError


def _call_with_threads(threads: int, fn: Callable[..., Any], *args: Any) -> Any:
    """Runs inside the Ray worker: pin the math libraries to `threads` threads, then call `fn`."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    return fn(*args)


def import_ray() -> Any:
    """`import ray`, or a one-line input error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise MixlawInputError(
            "--executor ray needs Ray: pip install 'mixlaw[ray]' (or pip install 'ray[default]')"
        ) from None
    return ray


class RayExecutor:
    """Submit each call as one Ray task with `cpus_per_run` CPUs and `gpus_per_run` GPUs.

    `address`: None starts (or joins, if `RAY_ADDRESS` is set) a local Ray instance; "auto" joins the running
    cluster; "ray://host:10001" connects a client. `init_kwargs` go to `ray.init` (e.g. `num_cpus=2` for a local
    instance, `runtime_env={...}` to ship code). A Ray instance started here is shut down by `shutdown()`.
    `max_retries` re-runs a task whose worker died (the run resumes from its last checkpoint)."""

    def __init__(
        self,
        address: str | None = None,
        cpus_per_run: float = 1.0,
        gpus_per_run: float = 0.0,
        threads: int = 1,
        max_retries: int = 1,
        **init_kwargs: Any,
    ) -> None:
        if cpus_per_run <= 0 or gpus_per_run < 0:
            raise MixlawInputError("ray executor: cpus per run must be > 0 and gpus per run >= 0")
        self.address = address
        self.cpus_per_run = cpus_per_run
        self.gpus_per_run = gpus_per_run
        self.threads = threads
        self.max_retries = max_retries
        self.init_kwargs = init_kwargs
        self._owns_ray = False
        self._refs: list[Any] = []
        self._remote: Any = None

    @property
    def workers(self) -> int:
        """Runs that fit at once on the cluster (for progress messages)."""
        ray = self._ray()
        res = ray.cluster_resources()
        slots = int(res.get("CPU", 1) // self.cpus_per_run)
        if self.gpus_per_run:
            slots = min(slots, int(res.get("GPU", 0) // self.gpus_per_run))
        return max(1, slots)

    def _ray(self) -> Any:
        ray = import_ray()
        if not ray.is_initialized():
            try:
                ray.init(
                    address=self.address, include_dashboard=False, log_to_driver=False, **self.init_kwargs
                )
            except ConnectionError as exc:
                raise MixlawInputError(f"--address {self.address}: cannot connect to Ray: {exc}") from None
            self._owns_ray = True
        return ray

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> cf.Future:
        ray = self._ray()
        if self._remote is None:
            self._remote = ray.remote(_call_with_threads).options(
                num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run, max_retries=self.max_retries
            )
        ref = self._remote.remote(self.threads, fn, *args)
        self._refs.append(ref)
        return ref.future()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        try:
            import ray
        except ImportError:
            return
        if not ray.is_initialized():
            return
        if cancel_futures:
            for ref in self._refs:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - already finished or gone
                    pass
        elif wait and self._refs:
            ray.wait(self._refs, num_returns=len(self._refs))
        self._refs = []
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False
            self._remote = None
