"""mixlaw: data mixing laws for choosing a pretraining data mixture from small proxy runs.

    import mixlaw
    law = mixlaw.fit("runs.csv", law="dml", model="70M", step=30000)
    law.predict(X)                       # {target: losses}, X (n, M) shares in law.domains order
    best = mixlaw.optimize(law)
    mixlaw.report("results/", out="report.html")
    mixlaw.export(best, "megatron", paths={"web": "data/web_text_document"})

The public functions live in `mixlaw.api` (see there). They are bound here after `mixlaw.api` has imported
every submodule whose name they share (`mixlaw.evaluate`, `mixlaw.optimize`, `mixlaw.report`,
`mixlaw.export`): the import system sets `mixlaw.<name>` to a submodule only when it first loads it, so the
function bound afterwards stays. Once those submodules are renamed, nothing here depends on that order.
"""

from mixlaw.api import evaluate, export, fit, load_law, optimize, predict, read_runs, report
from mixlaw.errors import MixlawInputError
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
