"""mixlaw: data mixing laws for choosing a pretraining data mixture from small proxy runs.

    import mixlaw
    law = mixlaw.fit("runs.csv", law="dml", model="70M", step=30000)
    law.predict(X)                       # {target: losses}, X (n, M) shares in law.domains order
    best = mixlaw.optimize(law)
    mixlaw.report("results/", out="report.html")
    mixlaw.export(best, "megatron", paths={"web": "data/web_text_document"})

The public functions live in `mixlaw.api` and load on first use (PEP 562), so `import mixlaw` and the
`mixlaw` command start without pandas and scipy. No submodule shares a name with them.
"""

from mixlaw.errors import MixlawInputError
from mixlaw.version import __version__

_API = ("evaluate", "export", "fit", "load_law", "optimize", "predict", "read_runs", "report")

__all__ = [
    "MixlawInputError",
    "evaluate",
    "export",
    "fit",
    "load_law",
    "optimize",
    "predict",
    "read_runs",
    "report",
    "__version__",
]


def __getattr__(name: str):
    if name in _API:
        from mixlaw import api

        return getattr(api, name)
    raise AttributeError(f"module 'mixlaw' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
