"""mixlaw: data mixing laws for choosing a pretraining data mixture from small proxy runs.

    import mixlaw
    law = mixlaw.fit("runs.csv", law="dml", model="70M", step=30000)
    law.predict(X)                       # {target: losses}, X (n, M) shares in law.domains order
    best = mixlaw.optimize(law)
    mixlaw.report("results/", out="report.html")
    mixlaw.export(best, "megatron", paths={"web": "data/web_text_document"})

The public functions live in `mixlaw.api` and are loaded on first use, so `import mixlaw` stays fast.
`mixlaw.evaluate`, `mixlaw.optimize`, `mixlaw.report` and `mixlaw.export` are also submodules; they stay callable after the
submodule is imported (the module object forwards calls to the function of the same name in `mixlaw.api`).
"""

import sys as _sys
import types as _types

from mixlaw.version import __version__

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

_API = {"read_runs", "fit", "evaluate", "predict", "optimize", "report", "export", "load_law"}
_CALLABLE_SUBMODULES = {"evaluate", "optimize", "report", "export"}


def __getattr__(name: str):
    if name in _API:
        from mixlaw import api

        return getattr(api, name)
    if name == "MixlawInputError":
        from mixlaw.errors import MixlawInputError

        return MixlawInputError
    raise AttributeError(f"module 'mixlaw' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _API | {"MixlawInputError"})


class _CallableModule(_types.ModuleType):
    """A submodule that is also the API function of the same name (`mixlaw.export(...)`)."""

    def __call__(self, *args, **kwargs):
        from mixlaw import api

        return getattr(api, self.__name__.rsplit(".", 1)[1])(*args, **kwargs)


class _Package(_types.ModuleType):
    # The import system sets `mixlaw.<sub>` to the submodule on import; keep those three callable.
    def __setattr__(self, name: str, value) -> None:
        if name in _CALLABLE_SUBMODULES and type(value) is _types.ModuleType:
            value.__class__ = _CallableModule
        super().__setattr__(name, value)


_sys.modules[__name__].__class__ = _Package
