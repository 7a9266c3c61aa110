"""Reports: figures (matplotlib, imported lazily) and one self-contained HTML page.

data = load_results_dir("results/")          # or from_runs(table, fit_data, law="dml-log")
path, figures = write_report(data, "report.html")
"""

from mixlaw.reporting.data import CVResult, ReportData, from_runs, load_results_dir
from mixlaw.reporting.figures import FIGURES
from mixlaw.reporting.html import write_report

__all__ = ["FIGURES", "CVResult", "ReportData", "from_runs", "load_results_dir", "write_report"]
