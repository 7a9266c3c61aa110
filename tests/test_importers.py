"""Importers: each format on a tiny fixture, plus malformed variants that fail with one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mixlaw.cli.main import main
from mixlaw.errors import MixlawInputError
from mixlaw.importers import import_mixinglaws, import_olmix, import_regmix, import_wandb
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
