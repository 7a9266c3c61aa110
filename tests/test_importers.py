"""Importers: each format on a tiny fixture, plus malformed variants that fail with one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mixlaw.cli.main import main
from mixlaw.errors import MixlawInputError
from mixlaw.importers import import_any, import_mixinglaws, import_olmix, import_regmix, import_wandb
from mixlaw.runs import read_runs

FIX = Path(__file__).parent / "fixtures" / "import"


def f(name: str) -> str:
    return str(FIX / name)


def one_line_error(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------------------------------ RegMix


def test_regmix_fixture():
    frame = import_regmix(
        f("regmix_mixtures.csv"), f("regmix_losses.csv"), model="1M", step=1000, renormalize=True
    )
    assert len(frame) == 12
    assert set(frame["valid_domain"]) == {"pile_cc", "github", "wikipedia"}
    assert [c for c in frame.columns if c.startswith("p_")] == ["p_pile_cc", "p_github", "p_wikipedia"]
    row = frame[(frame["run"] == "1") & (frame["valid_domain"] == "github")].iloc[0]
    assert row["loss"] == 2.71 and row["p_github"] == 0.6 and row["model"] == "1M"
    assert np.allclose(frame[["p_pile_cc", "p_github", "p_wikipedia"]].sum(axis=1), 1)


def test_regmix_rounded_mixture_needs_renormalize():
    with pytest.raises(MixlawInputError, match="--renormalize") as exc:
        import_regmix(f("regmix_mixtures.csv"), f("regmix_losses.csv"))
    one_line_error(exc)


def test_regmix_malformed(tmp_path):
    bad = tmp_path / "loss.csv"
    bad.write_text("run,metric/github_val_loss\n0,2.0\n")
    with pytest.raises(MixlawInputError, match="missing column.*index") as exc:
        import_regmix(f("regmix_mixtures.csv"), str(bad))
    one_line_error(exc)
    bad.write_text("index,metric/github_val_loss\n0,2.0\n9,2.1\n")
    with pytest.raises(MixlawInputError, match="index '9' has no mixture") as exc:
        import_regmix(f("regmix_mixtures.csv"), str(bad), renormalize=True)
    one_line_error(exc)
    bad.write_text("index,metric/github_val_loss\n0,2.0\n1,oops\n")
    with pytest.raises(
        MixlawInputError, match="line 3: column metric/github_val_loss: non-numeric value 'oops'"
    ):
        import_regmix(f("regmix_mixtures.csv"), str(bad), renormalize=True)
    bad.write_text("index,metric/github_val_loss\n0,2.0\n0,2.1\n")
    with pytest.raises(MixlawInputError, match="appears on 2 rows"):
        import_regmix(f("regmix_mixtures.csv"), str(bad), renormalize=True)
    mixtures = tmp_path / "mix.csv"
    mixtures.write_text("index,train_a,train_b\n0,0.5,abc\n")
    with pytest.raises(MixlawInputError, match="line 2: column train_b: non-numeric"):
        import_regmix(str(mixtures), f("regmix_losses.csv"))


# ------------------------------------------------------------------------------------------ Olmix


def test_olmix_fixture():
    frame = import_olmix(f("olmix_ratios.csv"), f("olmix_metrics.csv"))
    assert len(frame) == 6
    assert set(frame["valid_domain"]) == {"arc_easy:bpb", "mbpp:bpb"}
    assert "p_dclm:science" in frame.columns and "p_stack-edu" in frame.columns
    assert frame.loc[(frame["run"] == "r2") & (frame["valid_domain"] == "mbpp:bpb"), "loss"].item() == 0.80


def test_olmix_malformed(tmp_path):
    metrics = tmp_path / "metrics.csv"
    metrics.write_text("name,arc_easy:bpb\nswarm-0,1.1\n")
    with pytest.raises(MixlawInputError, match="missing column.*run") as exc:
        import_olmix(f("olmix_ratios.csv"), str(metrics))
    one_line_error(exc)
    metrics.write_text("run,arc_easy:bpb\nr0,1.1\nr7,1.2\n")
    with pytest.raises(MixlawInputError, match="run 'r7' has no mixture"):
        import_olmix(f("olmix_ratios.csv"), str(metrics))
    metrics.write_text("run,arc_easy:bpb\nr0,1.1\nr1,1.2x\n")
    with pytest.raises(MixlawInputError, match="line 3: column arc_easy:bpb: non-numeric value '1.2x'"):
        import_olmix(f("olmix_ratios.csv"), str(metrics))


# ------------------------------------------------------------------------------------------ paper raw logs


def test_mixinglaws_fixture():
    domains = ["academic", "prose", "dialogue", "symbolic", "internet"]
    frame = import_mixinglaws([f("mixinglaws_70M.txt")], domains)
    assert len(frame) == 6  # the `last` line is skipped
    assert set(frame["model"]) == {"70M"} and set(frame["step"]) == {3000, 6000}
    assert set(frame["valid_domain"]) == {"ArXiv", "Github"}
    assert frame.loc[frame["run"] == "0", "p_internet"].iloc[0] == 0.75
    three = import_mixinglaws(
        [f("mixinglaws_410M_noprefix.txt")], ["github", "books3", "pile_cc"], model="410M"
    )
    assert set(three["run"]) == {"4", "7"} and set(three["model"]) == {"410M"}


def test_mixinglaws_malformed(tmp_path):
    with pytest.raises(MixlawInputError, match="no size prefix; pass --model") as exc:
        import_mixinglaws([f("mixinglaws_410M_noprefix.txt")], ["github", "books3", "pile_cc"])
    one_line_error(exc)
    with pytest.raises(MixlawInputError, match="has 5 proportions, --domains gives 3"):
        import_mixinglaws([f("mixinglaws_70M.txt")], ["a", "b", "c"])
    with pytest.raises(MixlawInputError, match="need --domains"):
        import_mixinglaws([f("mixinglaws_70M.txt")], [])
    bad = tmp_path / "bad.txt"
    bad.write_text("/c/70M_0-0.5-0.5/1000 pythia-pile.valid.Github.bin nan?\n")
    with pytest.raises(MixlawInputError, match="line 1: non-numeric loss"):
        import_mixinglaws([str(bad)], ["a", "b"])
    bad.write_text("/c/70M_0-0.5-0.5/1000 pythia-pile.valid.Github.bin\n")
    with pytest.raises(MixlawInputError, match="line 1: expected 3 fields"):
        import_mixinglaws([str(bad)], ["a", "b"])
    bad.write_text("/c/70M_0-0.5-x/1000 pythia-pile.valid.Github.bin 2.0\n")
    with pytest.raises(MixlawInputError, match="non-numeric proportion"):
        import_mixinglaws([str(bad)], ["a", "b"])


def test_mixinglaws_matches_shared_csv_parsing(tmp_path):
    """Round trip: lines written from the shared tidy CSV parse back to the same rows."""
    import pandas as pd

    shared = Path(__file__).resolve().parents[2] / "shared" / "data" / "mixinglaws" / "2mix.csv"
    if not shared.exists():
        pytest.skip("shared data not present")
    rows = pd.read_csv(shared).query("model_size == '70M'").head(40)
    log = tmp_path / "70M.txt"
    log.write_text(
        "".join(
            f"/x/70M_{r.run}-{r.p_github}-{r.p_pile_cc}/{r.step} pythia-pile.valid.{r.valid_domain}.bin {r.loss!r}\n"
            for r in rows.itertuples()
        )
    )
    frame = import_mixinglaws([str(log)], ["github", "pile_cc"])
    assert np.allclose(np.sort(frame["loss"]), np.sort(rows["loss"]))


# ------------------------------------------------------------------------------------------ W&B


def test_wandb_summary_and_history():
    summary = import_wandb(f("wandb_summary.csv"), "mix/", "eval/", "/loss", model_col="model", step=1000)
    assert len(summary) == 6 and set(summary["valid_domain"]) == {"web", "code"}
    assert set(summary["model"]) == {"20M"}
    history = import_wandb(f("wandb_history.csv"), "mix/", "eval/", "/loss", step_col="_step")
    assert len(history) == 8 and set(history["step"]) == {500, 1000}
    assert history.loc[history["run"] == "run-b", "p_code"].unique().tolist() == [0.6]


def test_wandb_malformed(tmp_path):
    with pytest.raises(MixlawInputError, match="needs --step-col") as exc:
        import_wandb(f("wandb_history.csv"), "mix/", "eval/", "/loss")
    one_line_error(exc)
    with pytest.raises(MixlawInputError, match="no column starts with --mixture-prefix"):
        import_wandb(f("wandb_summary.csv"), "weights/", "eval/")
    with pytest.raises(MixlawInputError, match="--step-col 'step': no such column"):
        import_wandb(f("wandb_summary.csv"), "mix/", "eval/", step_col="step")
    bad = tmp_path / "export.csv"
    bad.write_text("Name,mix/a,mix/b,eval/a\nx,0.5,0.5,1.0\ny,0.5,0.5,crashed\n")
    with pytest.raises(MixlawInputError, match="line 3: column eval/a: non-numeric value 'crashed'"):
        import_wandb(str(bad), "mix/", "eval/")


# ------------------------------------------------------------------------------------------ CLI


def test_import_cli(tmp_path, capsys):
    out = tmp_path / "runs.parquet"
    code = main(
        [
            "import",
            "--from",
            "regmix",
            f("regmix_mixtures.csv"),
            f("regmix_losses.csv"),
            "--model",
            "1M",
            "--step",
            "1000",
            "--renormalize",
            "--out",
            str(out),
            "-q",
        ]
    )
    assert code == 0
    table = read_runs(out)
    assert table.domains == ["pile_cc", "github", "wikipedia"] and len(table.frame) == 12
    out2 = tmp_path / "5mix.csv"
    assert (
        main(
            [
                "import",
                "--from",
                "mixinglaws",
                f("mixinglaws_70M.txt"),
                "--domains",
                "academic,prose,dialogue,symbolic,internet",
                "--out",
                str(out2),
                "-q",
            ]
        )
        == 0
    )
    assert len(read_runs(out2).frame) == 6


def test_import_cli_errors(tmp_path, capsys):
    out = str(tmp_path / "x.parquet")
    assert main(["import", "--from", "mixinglaws", f("mixinglaws_70M.txt"), "--out", out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs --domains" in err[0]
    assert main(["import", "--from", "regmix", f("regmix_mixtures.csv"), "--out", out]) == 2
    assert "takes 2 file(s)" in capsys.readouterr().err
    assert (
        main(["import", "--from", "wandb", f("wandb_summary.csv"), "--loss-prefix", "eval/", "--out", out])
        == 2
    )
    assert "--mixture-prefix" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ real tool shapes

CT_BASE = "/x/model_configs//pythia_70m_step20000"
CT_RUN = "/x/ckpts/ct//70M_ct_1-0.25-0.75/2000"


def test_mixinglaws_ct_log_base_lines_and_python_valid(tmp_path):
    # shape of data/ct/70M.txt in yegcjs/mixinglaws: tab-separated; the first lines are the base model (no
    # proportions, no step directory); the Python set is starcoder.python.valid.bin (`python` in ct.csv)
    log = tmp_path / "70M.txt"
    lines = [
        f"{CT_BASE}\t/x/pythia-pile.valid.domains//pythia-pile.valid.Github.bin\t1.5652903197747976",
        f"{CT_BASE}\t/x/ct_valid//starcoder.python.valid.bin\t1.8381195068359375",
        f"{CT_RUN}\t/x/pythia-pile.valid.domains//pythia-pile.valid.Github.bin\t1.561023295167004",
        f"{CT_RUN}\t/x/ct_valid//starcoder.python.valid.bin\t1.4695587158203125",
    ]
    log.write_text("\n".join(lines) + "\n")
    frame = import_mixinglaws([str(log)], domains=["pile", "python"])
    base = frame[frame["run"] == "base"]
    assert set(base["valid_domain"]) == {"Github", "python"} and set(frame["valid_domain"]) == {
        "Github",
        "python",
    }
    assert (base["step"] == 0).all() and (base["model"] == "70M").all()
    assert (base["p_pile"] == 1.0).all() and (base["p_python"] == 0.0).all()  # as ct.csv writes the base run
    run = frame[(frame["run"] == "1") & (frame["valid_domain"] == "python")].iloc[0]
    assert run["p_python"] == 0.75 and run["step"] == 2000 and run["loss"] == 1.4695587158203125


def test_mixinglaws_ct_matches_shared_csv():
    shared = Path(__file__).parents[2] / "shared" / "data" / "mixinglaws" / "ct.csv"
    if not shared.exists():
        pytest.skip("benchmark-style check: needs ../shared/data/mixinglaws/ct.csv")
    import pandas as pd

    names = set(pd.read_csv(shared)["valid_domain"])
    assert {"python", "Github", "Pile-CC"} <= names


def test_wandb_docs_export_with_dict_cells(tmp_path):
    # W&B docs "Export data" script: DataFrame({"summary": [...], "config": [...], "name": [...]}).to_csv(),
    # so cells hold str(dict) and there is an unnamed index column
    path = tmp_path / "project.csv"
    path.write_text(
        ",summary,config,name\n"
        "0,\"{'loss/web': 2.5, 'loss/code': 1.5, '_step': 1000}\",\"{'mix': {'web': 0.7, 'code': 0.3}}\",run-a\n"
        "1,\"{'loss/web': 2.6, 'loss/code': 1.4, '_step': 1000}\",\"{'mix': {'web': 0.4, 'code': 0.6}}\",run-b\n"
    )
    frame = import_wandb(str(path), mixture_prefix="mix.", loss_prefix="loss/", run_col="name", step=1000)
    assert set(frame["run"]) == {"run-a", "run-b"} and len(frame) == 4
    row = frame[(frame["run"] == "run-b") & (frame["valid_domain"] == "code")].iloc[0]
    assert row["p_code"] == 0.6 and row["loss"] == 1.4


def test_wandb_history_joined_to_config_table(tmp_path):
    # runs.histories() gives run_id, _step and metrics only; the mixture comes from a config table
    history = tmp_path / "histories.csv"
    history.write_text("run_id,_step,val/web,val/code\nabc,100,3.0,2.0\nabc,200,2.8,1.9\nxyz,100,3.1,1.8\n")
    config = tmp_path / "config.csv"
    config.write_text("run_id,mix/web,mix/code\nabc,0.5,0.5\nxyz,0.2,0.8\n")
    frame = import_any(
        "wandb", [str(history), str(config)], mixture_prefix="mix/", loss_prefix="val/", step_col="_step"
    )
    assert set(frame["run"]) == {"abc", "xyz"} and len(frame) == 6
    assert frame[frame["run"] == "xyz"]["p_code"].iloc[0] == 0.8
    config.write_text("run_id,mix/web,mix/code\nabc,0.5,0.5\n")
    with pytest.raises(MixlawInputError, match="'xyz'") as exc:
        import_any(
            "wandb", [str(history), str(config)], mixture_prefix="mix/", loss_prefix="val/", step_col="_step"
        )
    one_line_error(exc)


def test_wandb_single_run_history(tmp_path):
    # run.history().to_csv(): pandas index, _step, metrics; no run column at all
    history = tmp_path / "run-abc.csv"
    history.write_text(",_step,val/web,val/code\n0,100,3.0,2.0\n1,200,2.8,1.9\n")
    config = tmp_path / "config.csv"
    config.write_text("mix/web,mix/code\n0.5,0.5\n")
    frame = import_wandb(str(history), "mix/", "val/", step_col="_step", config_path=str(config))
    assert set(frame["run"]) == {"run-abc"} and sorted(set(frame["step"])) == [100, 200]


def test_formula_cells_are_neutralized(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text('Name,mix/web,mix/code,val/web\n"=HYPERLINK(""http://x"")",0.5,0.5,2.0\n-3,0.4,0.6,2.1\n')
    frame = import_wandb(str(path), "mix/", "val/", step=1)
    assert set(frame["run"]) == {'\'=HYPERLINK("http://x")', "-3"}  # a number stays as it is


def test_import_output_extension_checked(tmp_path, capsys):
    out = tmp_path / "runs.xlsx"
    code = main(
        ["import", "--from", "regmix", f("regmix_mixtures.csv"), f("regmix_losses.csv"), "--out", str(out)]
    )
    err = capsys.readouterr().err
    assert code == 2 and ".xlsx" in err and ".csv" in err and ".parquet" in err and not out.exists()


def test_olmix_pandas_index_column_and_sum_tolerance(tmp_path):
    # ratios.csv written by pandas with its index (read back as `Unnamed: 0`); a sum of 0.995 is within Olmix's
    # 0.01 and is rescaled with a warning
    ratios = tmp_path / "ratios.csv"
    ratios.write_text(",run,name,index,dclm,code\n0,r1,a,0,0.695,0.3\n1,r2,b,1,0.5,0.5\n")
    metrics = tmp_path / "metrics.csv"
    metrics.write_text(",run,name,index,bpb/dclm\n0,r1,a,0,1.1\n1,r2,b,1,1.0\n")
    frame = import_olmix(str(ratios), str(metrics))
    assert [c for c in frame.columns if c.startswith("p_")] == ["p_dclm", "p_code"]
    assert frame[frame["run"] == "r1"]["p_dclm"].iloc[0] == pytest.approx(0.695 / 0.995)
    ratios.write_text("run,dclm,code\nr1,0.6,0.3\nr2,0.5,0.5\n")
    with pytest.raises(MixlawInputError) as exc:
        import_olmix(str(ratios), str(metrics))
    one_line_error(exc)


def test_olmix_result_file(tmp_path):
    from mixlaw.importers import read_olmix_mixture

    path = tmp_path / "result.json"
    path.write_text('[{"domain": "dclm", "weight": 0.7}, {"domain": "code", "weight": 0.3}]')
    assert read_olmix_mixture(path) == pytest.approx({"dclm": 0.7, "code": 0.3})
    path.write_text('[{"domain": "dclm", "weight": 0.7}]')
    with pytest.raises(MixlawInputError, match="sum to 0.7") as exc:
        read_olmix_mixture(path)
    one_line_error(exc)
