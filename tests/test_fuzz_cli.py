"""Malformed input to every command: exit 2, one line on stderr naming the culprit, no traceback.

The cases are generated from a small spec, command x field x bad value (`SPEC` below), and run in-process against
small synthetic inputs made once per session. No case trains a model: validation must fail before any work.
Cases the code does not handle yet are listed in `KNOWN_FAILING` and run as strict xfails, so fixing one
forces its removal from the list (and a new regression fails the suite).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from mixlaw.cli.main import main
from tests.conftest import make_runs
from tests.test_continual import _frame as continual_frame


@dataclass(frozen=True)
class Case:
    command: str
    field: str
    value: str
    argv: tuple[str, ...]
    names: tuple[str, ...]  # any of these must appear in the error line

    @property
    def id(self) -> str:
        return f"{self.command}:{self.field}={self.value}"


# -- inputs made once -------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzz")
    make_runs().to_csv(root / "runs.csv", index=False)
    make_runs(steps=(1000, 2000, 4000), models=("m1", "m2", "m3")).to_csv(root / "scale.csv", index=False)
    (root / "mix.csv").write_text("p_a,p_b,p_c\n0.2,0.3,0.5\n")
    (root / "weights.csv").write_text("valid_domain,valid_weight\na,1\nb,1\nc,2\n")
    (root / "bounds.csv").write_text("domain,lower,upper\na,0,0.5\n")
    (root / "tokens.csv").write_text("domain,tokens\na,1e6\nb,1e6\nc,1e6\n")
    (root / "empty.csv").write_text("")
    (root / "garbage.csv").write_bytes(b"\xff\xfe\x00garbage")
    (root / "afile").write_text("x")
    (root / "adir").mkdir()
    assert main(["fit", str(root / "runs.csv"), "--law", "dml", "--out", str(root / "law.json"), "-q"]) == 0
    assert main(["optimize", str(root / "law.json"), "--out", str(root / "opt.json"), "-q"]) == 0
    law = json.loads((root / "law.json").read_text())
    bad_laws = {
        "law_version_str.json": {**law, "schema_version": "1"},
        "law_version_future.json": {**law, "schema_version": 99},
        "law_params_empty.json": {**law, "params": {}},
        "law_params_str.json": {**law, "params": {k: "x" for k in law["params"]}},
        "law_null_domains.json": {**law, "domains": None},
        "law_weights_str.json": {**law, "total_weights": {t: "x" for t in law["targets"]}},
        "law_two_domains.json": {**law, "domains": ["a", "b"]},
        "law_unknown.json": {**law, "law": "no-such-law"},
        "law_list.json": [law],
    }
    for name, data in bad_laws.items():
        (root / name).write_text(json.dumps(data))
    (root / "law_truncated.json").write_text((root / "law.json").read_text()[:200])
    opt = json.loads((root / "opt.json").read_text())
    (root / "opt_negative.json").write_text(
        json.dumps({**opt, "mixture": {"p_a": -0.5, "p_b": 1.0, "p_c": 0.5}})
    )
    (root / "opt_sum.json").write_text(json.dumps({**opt, "mixture": {"p_a": 0.5, "p_b": 0.5, "p_c": 0.5}}))
    (root / "opt_nomix.json").write_text(json.dumps({"x": 1}))
    bad_runs = {
        "runs_negloss.csv": lambda f: f.assign(loss=-f["loss"]),
        "runs_nanloss.csv": lambda f: f.assign(loss=float("nan")),
        "runs_bigloss.csv": lambda f: f.assign(loss=f["loss"] * 1e12),
        "runs_badp.csv": lambda f: f.assign(p_a=f["p_a"] + 0.5),
        "runs_noloss.csv": lambda f: f.drop(columns=["loss"]),
        "runs_strloss.csv": lambda f: f.assign(loss="high"),
    }
    base = make_runs()
    for name, change in bad_runs.items():
        change(base).to_csv(root / name, index=False)
    base.assign(**{"p_a ": base["p_a"]}).to_csv(root / "runs_dupcol.csv", index=False)
    continual_frame().to_csv(root / "ct.csv", index=False)
    config = yaml.safe_load(Path(__file__).parents[1].joinpath("mixlaw/configs/run-default.yaml").read_text())
    (root / "run.yaml").write_text(yaml.safe_dump(config))
    for name, seed in RUN_PIPELINE_SEEDS.items():  # the run config's pipeline seed: an integer >= 0
        bad = {**config, "pipeline": {**config["pipeline"], "seed": seed}}
        (root / f"run_seed_{name}.yaml").write_text(yaml.safe_dump(bad))
    return root


RUN_PIPELINE_SEEDS = {"negative": -1, "bool": True, "float": 1.5, "string": "one"}


# -- the spec ---------------------------------------------------------------------------------------------------

NUMBERS = ("nan", "inf", "-1", "abc", "1e400")
OUTPUTS = ("adir", "missing/dir/out.json", "afile/out.json")
FILES = ("missing.csv", "adir", "empty.csv", "garbage.csv")


def _cases() -> list[Case]:
    cases: list[Case] = []

    def add(command, field, values, build, names=None):
        for value in values:
            argv = build(value)
            cases.append(
                Case(
                    command,
                    field,
                    value,
                    tuple(argv),
                    tuple(n.replace("{v}", value) for n in names or (field, value)),
                )
            )

    runs, law, opt = "{runs}", "{law}", "{opt}"
    # fit / evaluate / compare: runs tables and numbers
    for command, extra in (
        ("fit", ["--law", "dml", "--out", "{d}/fit-out.json"]),
        ("evaluate", ["--law", "dml", "--cv", "3"]),
    ):
        add(command, "RUNS", FILES, lambda v, c=command, e=extra: [c, "{d}/" + v, *e], names=("{v}",))
        add(
            command,
            "RUNS",
            ("runs_negloss.csv", "runs_nanloss.csv", "runs_bigloss.csv", "runs_badp.csv", "runs_noloss.csv")
            + ("runs_strloss.csv", "runs_dupcol.csv"),
            lambda v, c=command, e=extra: [c, "{d}/" + v, *e],
            names=("loss", "p_a", "column"),
        )
        for flag in ("--step", "--params", "--step-tol", "--seed"):
            add(command, flag, NUMBERS, lambda v, c=command, e=extra, f=flag: [c, runs, *e, f, v])
        add(
            command,
            "--law",
            ("nope", ""),
            lambda v, c=command, e=extra: [c, runs, *e, "--law", v],
            names=("law",),
        )
        add(
            command,
            "--param",
            ("ridge=nan", "ridge=abc", "restarts=0", "restarts=-3", "nokey=1", "ridge"),
            lambda v, c=command, e=extra: [c, runs, *e, "--param", v],
            names=("ridge", "restarts", "nokey", "param"),
        )
        add(
            command,
            "--valid-weights",
            FILES,
            lambda v, c=command, e=extra: [c, runs, *e, "--valid-weights", "{d}/" + v],
        )
    add("fit", "--out", OUTPUTS, lambda v: ["fit", runs, "--law", "dml", "--out", "{d}/" + v], names=("{v}",))
    add(
        "evaluate",
        "--cv",
        ("1", "0", "-2", "abc", "nan"),
        lambda v: ["evaluate", runs, "--law", "dml", "--cv", v],
        names=("cv",),
    )
    add(
        "compare",
        "--cv",
        ("1", "0", "abc"),
        lambda v: ["compare", runs, "--laws", "dml", "--cv", v],
        names=("cv",),
    )
    add(
        "compare",
        "--out",
        OUTPUTS,
        lambda v: ["compare", runs, "--laws", "dml", "--no-auto", "--out", "{d}/" + v],
        names=("{v}",),
    )
    # predict: law files, mixtures, outputs
    bad_law_files = (
        "law_version_str.json",
        "law_version_future.json",
        "law_params_empty.json",
        "law_params_str.json",
        "law_null_domains.json",
        "law_weights_str.json",
        "law_two_domains.json",
        "law_unknown.json",
        "law_list.json",
        "law_truncated.json",
        "missing.json",
        "adir",
    )
    add(
        "predict",
        "LAW.json",
        bad_law_files,
        lambda v: ["predict", "{d}/" + v, "{d}/mix.csv"],
        names=("{v}",),
    )
    add("predict", "MIXTURES", FILES, lambda v: ["predict", law, "{d}/" + v], names=("{v}",))
    add(
        "predict",
        "--out",
        OUTPUTS,
        lambda v: ["predict", law, "{d}/mix.csv", "--out", "{d}/" + v],
        names=("{v}",),
    )
    add(
        "predict",
        "--interval",
        ("0", "1", "1.5", "nan", "abc"),
        lambda v: ["predict", law, "{d}/mix.csv", "--interval", v],
    )
    # optimize
    opt_out = ["--out", "{d}/opt-out.json"]
    add("optimize", "LAW.json", bad_law_files, lambda v: ["optimize", "{d}/" + v, *opt_out], names=("{v}",))
    add("optimize", "--out", OUTPUTS, lambda v: ["optimize", law, "--out", "{d}/" + v], names=("{v}",))
    for flag in (
        "--starts",
        "--max-epochs",
        "--max-distance",
        "--prior-strength",
        "--target-tokens",
        "--interval",
    ):
        # 0 is a valid prior strength (the default); a strength without --prior would be silently ignored
        values = NUMBERS + (("1",) if flag == "--prior-strength" else ("0",))
        add("optimize", flag, values, lambda v, f=flag: ["optimize", law, *opt_out, f, v])
    add(
        "optimize",
        "--fix",
        ("p_a=2", "p_a=nan", "p_zz=0.1", "p_a", "p_a=-0.1"),
        lambda v: ["optimize", law, *opt_out, "--fix", v],
        names=("p_a", "p_zz", "fix"),
    )
    add(
        "optimize",
        "--baseline",
        ("a=0.5", "a=abc", "zz=1", "a=-1,b=2"),
        lambda v: ["optimize", law, *opt_out, "--baseline", v],
        names=("baseline",),
    )
    add(
        "optimize",
        "--bounds",
        FILES,
        lambda v: ["optimize", law, *opt_out, "--bounds", "{d}/" + v],
        names=("{v}",),
    )
    add(
        "optimize",
        "--available",
        FILES,
        lambda v: ["optimize", law, *opt_out, "--available", "{d}/" + v, "--target-tokens", "1e6"],
        names=("{v}",),
    )
    add(
        "optimize",
        "--objective",
        ("zz", "{d}/missing.csv"),
        lambda v: ["optimize", law, *opt_out, "--objective", v],
        names=("objective", "zz", "missing"),
    )
    # pipeline
    pipe = [
        "pipeline",
        "{scale}",
        "--law",
        "dml",
        "--target-step",
        "8000",
        "--target-params",
        "8000",
        "--out",
        "{d}/pipe-out",
    ]
    for flag in ("--target-params", "--target-step", "--huber-delta", "--cv", "--min-sizes", "--seed"):
        add("pipeline", flag, NUMBERS, lambda v, f=flag: [*pipe, f, v])
    add("pipeline", "--seed", ("1.5", "true"), lambda v: [*pipe, "--seed", v])
    add(
        "pipeline",
        "--target-params",
        ("10",),
        lambda v: [*pipe, "--target-params", v],
        names=("target", "proxies", "smaller"),
    )
    add(
        "pipeline",
        "--fit-steps",
        ("5:1", "a:b", "nan:"),
        lambda v: [*pipe, "--fit-steps", v],
        names=("fit-steps", "{v}"),
    )
    add(
        "pipeline",
        "--step-exponent",
        ("2:1", "x", "-1:1"),
        lambda v: [*pipe, "--step-exponent", v],
        names=("step-exponent", "{v}"),
    )
    add("pipeline", "--out", ("afile", "afile/sub"), lambda v: [*pipe, "--out", "{d}/" + v], names=("{v}",))
    # design
    add(
        "design",
        "-n",
        ("0", "-1", "abc"),
        lambda v: ["design", "--domains", "a,b,c", "--method", "dirichlet", "-n", v],
        names=("-n", "n"),
    )
    add(
        "design",
        "--grid",
        ("0", "0.3", "-1", "abc", "nan"),
        lambda v: ["design", "--domains", "a,b,c", "--method", "grid", "--grid", v],
        names=("grid",),
    )
    add(
        "design",
        "--domains",
        ("a,a,b", ",", "a"),
        lambda v: ["design", "--domains", v, "--method", "dirichlet", "-n", "4"],
        names=("domain",),
    )
    add(
        "design",
        "--tokens",
        ("a=-1,b=2", "a=nan,b=1", "a=x"),
        lambda v: ["design", "--tokens", v, "--method", "dirichlet", "-n", "4"],
        names=("tokens", "a"),
    )
    add(
        "design",
        "--caps",
        ("a=2", "a=-1", "zz=0.5", "a=nan"),
        lambda v: ["design", "--domains", "a,b,c", "--method", "dirichlet", "-n", "4", "--caps", v],
        names=("caps", "a", "zz"),
    )
    add(
        "design",
        "--out",
        OUTPUTS,
        lambda v: ["design", "--domains", "a,b,c", "--method", "dirichlet", "-n", "4", "--out", "{d}/" + v],
        names=("{v}",),
    )
    # import
    add(
        "import",
        "FILE",
        ("missing.csv", "adir", "empty.csv"),
        lambda v: ["import", "--from", "olmix", "{d}/" + v, "{d}/" + v, "--out", "{d}/out.csv"],
        names=("{v}",),
    )
    add(
        "import",
        "--out",
        ("adir", "missing/x.parquet", "afile/x.parquet", "x.xlsx"),
        lambda v: [
            "import",
            "--from",
            "regmix",
            "{fx}/regmix_mixtures.csv",
            "{fx}/regmix_losses.csv",
            "--renormalize",
            "--model",
            "1M",
            "--step",
            "1000",
            "--out",
            "{d}/" + v,
        ],
        names=("{v}", "xlsx"),
    )
    # export
    add(
        "export",
        "OPT.json",
        ("opt_negative.json", "opt_sum.json", "opt_nomix.json", "missing.json", "adir", "law_truncated.json"),
        lambda v: ["export", "{d}/" + v, "--format", "megatron"],
        names=("{v}",),
    )
    add("export", "--format", ("nope", ""), lambda v: ["export", opt, "--format", v], names=("format",))
    add(
        "export",
        "--paths",
        ("zz=/x", "a", "a=", "a=/x y"),
        lambda v: ["export", opt, "--format", "megatron", "--paths", v],
        names=("paths", "zz", "a"),
    )
    add(
        "export",
        "--out",
        OUTPUTS,
        lambda v: ["export", opt, "--format", "megatron", "--out", "{d}/" + v],
        names=("{v}",),
    )
    # report
    add("report", "RESULTS_DIR|RUNS", FILES, lambda v: ["report", "{d}/" + v], names=("{v}",))
    add(
        "report",
        "--out",
        ("adir", "missing/r.html", "afile/r.html"),
        lambda v: ["report", runs, "--law", "dml", "--out", "{d}/" + v],
        names=("{v}",),
    )
    add("report", "--cv", ("1", "abc"), lambda v: ["report", runs, "--law", "dml", "--cv", v], names=("cv",))
    # continual
    cont = ["continual", "{ct}", "--base-run", "base", "--original", "a,b,c", "--new", "new"]
    add("continual", "--tolerance", NUMBERS, lambda v: [*cont, "--tolerance", v])
    add("continual", "--level", ("0", "1", "nan", "2"), lambda v: [*cont, "--level", v])
    add("continual", "--bootstrap", ("-1", "abc"), lambda v: [*cont, "--bootstrap", v])
    add("continual", "--seed", ("-1", "1.5"), lambda v: [*cont, "--seed", v])
    for flag in ("--out", "--curve"):
        add("continual", flag, OUTPUTS, lambda v, f=flag: [*cont, f, "{d}/" + v], names=("{v}",))
    add(
        "schedule",
        "fit --out",
        OUTPUTS,
        lambda v: ["schedule", "fit", runs, "--out", "{d}/" + v],
        names=("{v}",),
    )
    add(
        "schedule",
        "optimize --max-epochs",
        ("nan", "0", "-1"),
        lambda v: ["schedule", "optimize", law, "--max-epochs", v],
        names=("--max-epochs",),
    )
    add("predict", "--bootstrap", ("0", "-1"), lambda v: ["predict", law, "{d}/mix.csv", "--bootstrap", v])
    # commands that create a results folder: the folder may be missing, not a file or under a file
    folder_commands = {
        "pipeline": pipe[:-1],
        "sweep": ["sweep", "{fx}/../../../mixlaw/configs/demo.yaml", "--out"],
        "run": ["run", "{d}/run.yaml", "--out"],
        "demo": ["demo", "--out"],
    }
    for command, argv in folder_commands.items():
        if command != "pipeline":
            add(command, "--out", ("afile", "afile/sub"), lambda v, a=argv: [*a, "{d}/" + v], names=("{v}",))
    add("sweep", "--workers", ("0", "nan"), lambda v: [*folder_commands["sweep"], "{d}/sw", "--workers", v])
    add(
        "run", "--workers", ("0", "inf"), lambda v: ["run", "{d}/run.yaml", "--out", "{d}/ro", "--workers", v]
    )
    add("run", "--ddp", ("0",), lambda v: ["run", "{d}/run.yaml", "--out", "{d}/ro", "--ddp", v])
    add("demo", "--seed", ("-1", "nan"), lambda v: ["demo", "--out", "{d}/demo-out", "--seed", v])
    add(
        "design",
        "--temperature",
        ("nan", "-1"),
        lambda v: ["design", "--domains", "a,b,c", "-n", "4", "--temperature", v],
    )
    add(
        "design",
        "--out",
        ("mix.txt",),
        lambda v: ["design", "--domains", "a,b,c", "-n", "4", "--out", "{d}/" + v],
        names=("{v}",),
    )
    # confirm: the pipeline's optimum and the user's rung runs
    conf = ["confirm", opt, "--runs"]
    add("confirm", "RESULTS_DIR_or_OPTIMUM", ("missing.json", "adir", "garbage.csv", "law_truncated.json"),
        lambda v: ["confirm", "{d}/" + v, "--runs", runs], names=("{v}",))  # fmt: skip
    add("confirm", "--runs", FILES, lambda v: [*conf, "{d}/" + v], names=("{v}",))
    add("confirm", "--runs", ("runs_negloss.csv", "runs_noloss.csv", "runs_badp.csv"),
        lambda v: [*conf, "{d}/" + v], names=("loss", "p_a"))  # fmt: skip
    add(
        "confirm", "--runs", ("runs.csv",), lambda v: [*conf, "{d}/" + v], names=("{v}",)
    )  # no candidate runs
    add("confirm", "--fraction", ("nan", "-1", "2", "abc"), lambda v: [*conf, runs, "--fraction", v])
    add("confirm", "--noise", ("0", "nan"), lambda v: [*conf, runs, "--noise", v])
    add("confirm", "--min-confidence", ("0", "1.5", "nan"), lambda v: [*conf, runs, "--min-confidence", v])
    add("confirm", "--validation-seeds", ("0", "1.5", "x"), lambda v: [*conf, runs, "--validation-seeds", v])
    add("confirm", "--out", OUTPUTS, lambda v: [*conf, runs, "--out", "{d}/" + v], names=("{v}",))
    # run: a config with one bad value; must fail before any training
    add(
        "run",
        "CONFIG.yaml",
        ("missing.yaml", "adir", "garbage.csv"),
        lambda v: ["run", "{d}/" + v, "--out", "{d}/runout"],
        names=("{v}",),
    )
    add(
        "run",
        "pipeline.seed",
        tuple(RUN_PIPELINE_SEEDS),
        lambda v: ["run", "{d}/run_seed_" + v + ".yaml", "--out", "{d}/runout"],
        names=("pipeline.seed",),
    )
    return cases


CASES = _cases()

# Known gaps (issue 17), each an exit code other than 2, a traceback, or an error that names nothing.
KNOWN_FAILING: set[str] = set()


def _missing(case_id: str) -> str:
    return "missing-" + "".join(ch if ch.isalnum() else "_" for ch in case_id)


def _expand(argv: tuple[str, ...], inputs: Path, case_id: str) -> list[str]:
    """The case's command line with the session's input files; a missing folder is one no other case creates."""
    missing = _missing(case_id)
    fixtures = Path(__file__).parent / "fixtures" / "import"
    mapping = {
        "{runs}": str(inputs / "runs.csv"),
        "{scale}": str(inputs / "scale.csv"),
        "{law}": str(inputs / "law.json"),
        "{opt}": str(inputs / "opt.json"),
        "{ct}": str(inputs / "ct.csv"),
    }
    out = []
    for arg in argv:
        arg = mapping.get(arg, arg)
        arg = arg.replace("{d}", str(inputs)).replace("{fx}", str(fixtures))
        out.append(arg.replace(f"{inputs}/missing/", f"{inputs}/{missing}/"))
    return out


def test_the_table_is_large_enough():
    assert len(CASES) >= 150
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2(case: Case, inputs: Path, capsys, request):
    if case.id in KNOWN_FAILING and not os.environ.get("MIXLAW_FUZZ_ALL"):  # set it to list what fails now
        request.applymarker(pytest.mark.xfail(strict=True, reason="known gap, issue 17"))
    argv = _expand(case.argv, inputs, case.id)
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse
        code = exit_.code
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("mixlaw: error:")]
    assert "Traceback" not in err
    assert code == 2, f"exit {code}: {err.strip()[-300:]}"
    assert len(errors) == 1, err
    names = [n.replace("{d}", str(inputs)).replace("missing/", _missing(case.id) + "/") for n in case.names]
    assert any(n and n in errors[0] for n in names), f"{errors[0]!r} names none of {names}"


@pytest.mark.parametrize("seed", [-1, True, 1.5, "0", None])
def test_pipeline_config_seed_is_an_integer_at_least_zero(seed):
    from mixlaw.errors import MixlawInputError
    from mixlaw.settings import PipelineConfig

    with pytest.raises(MixlawInputError, match="seed"):
        PipelineConfig(1.0, target_step=1.0, seed=seed)
    assert PipelineConfig(1.0, target_step=1.0, seed=7).seed == 7


def test_run_config_takes_the_pipeline_seed(inputs: Path):
    from mixlaw.job import load_run_config

    config = yaml.safe_load((inputs / "run.yaml").read_text())
    config["pipeline"]["seed"] = 4
    (inputs / "run_seed_ok.yaml").write_text(yaml.safe_dump(config))
    assert load_run_config(inputs / "run_seed_ok.yaml").pipeline_config.seed == 4
