"""`mixlaw run`: the end-to-end job (design -> proxy sweep -> pipeline -> optimum -> validation at the target
scale). `config` parses and checks the YAML, `stages` runs the resumable stages, `measure` compares the
prediction with the validation runs."""

from mixlaw.job.config import RunConfig, default_config_path, load_run_config, parse_run_config
from mixlaw.job.measure import NOISE_SIGMAS, Validation, equivalent_steps, measure, verdict
from mixlaw.job.stages import non_embedding_params, run_job

__all__ = [
    "NOISE_SIGMAS",
    "RunConfig",
    "Validation",
    "default_config_path",
    "equivalent_steps",
    "load_run_config",
    "measure",
    "non_embedding_params",
    "parse_run_config",
    "run_job",
    "verdict",
]
