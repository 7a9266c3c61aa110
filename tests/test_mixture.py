"""The one mixture model (mixlaw.mixture): every input form, the tolerance, the messages, the names."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import yaml

from mixlaw.errors import MixlawInputError
from mixlaw.exporters import load_mixture, parse_paths
from mixlaw.fitted import FitData, prepare
from mixlaw.job.stages import _mixture_tuple
from mixlaw.mixture import (
    SUM_TOLERANCE,
    Domains,
    Mixture,
    canonical_name,
    check_table,
    mixtures_array,
    to_p_columns,
)
from mixlaw.optimizer import parse_mixture
from mixlaw.reporting.data import mixture_vector
from mixlaw.runs import TRAINER_FLOAT_FORMAT, RunsTable, load_weights, validate_runs, write_runs
from mixlaw.train.spec import RunSpec

DOMAINS = ["web", "code", "math_prose"]
WANT = np.array([0.5, 0.3, 0.2])


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# --------------------------------------------------------------------------------------------- input forms


@pytest.mark.parametrize(
    "spec",
    [
        {"web": 0.5, "code": 0.3, "math_prose": 0.2},
        {"p_web": 0.5, "p_code": 0.3, "p_math_prose": 0.2},
        {"p_math_prose": 0.2, "web": 0.5, "code": 0.3},  # any order, prefixes mixed
        "web=0.5, code=0.3,math_prose=0.2",
        "p_web=0.5,p_code=0.3,p_math_prose=0.2",
        [0.5, 0.3, 0.2],
        np.array([0.5, 0.3, 0.2]),
        Mixture(("code", "web", "math_prose"), (0.3, 0.5, 0.2)),
    ],
)
def test_every_in_memory_form_parses_to_the_same_shares(spec):
    mix = Mixture.parse(spec, DOMAINS)
    assert mix.domains == tuple(DOMAINS)
    np.testing.assert_array_equal(mix.as_array(), WANT)
    np.testing.assert_array_equal(parse_mixture(spec, DOMAINS), WANT)


def test_file_forms(tmp_path):
    shares = {"web": 0.5, "code": 0.3, "math_prose": 0.2}
    (tmp_path / "m.json").write_text(json.dumps(shares))
    (tmp_path / "opt.json").write_text(json.dumps({"mixture": {f"p_{d}": v for d, v in shares.items()}}))
    (tmp_path / "m.yaml").write_text(yaml.safe_dump(shares))
    (tmp_path / "m.csv").write_text("p_web,p_code,p_math_prose\n0.5,0.3,0.2\n")
    for name in ("m.json", "opt.json", "m.yaml", "m.csv"):
        path = tmp_path / name
        np.testing.assert_array_equal(Mixture.from_file(path, DOMAINS).as_array(), WANT)
        np.testing.assert_array_equal(Mixture.parse(str(path), DOMAINS).as_array(), WANT)
    (tmp_path / "two.csv").write_text("p_web,p_code,p_math_prose\n0.5,0.3,0.2\n0.5,0.3,0.2\n")
    with pytest.raises(MixlawInputError, match="two.csv: expected one mixture row, found 2") as exc:
        Mixture.from_file(tmp_path / "two.csv")
    one_line(exc)


def test_missing_domains_are_zero_and_views():
    mix = Mixture.from_dict({"web": 0.75, "p_code": 0.25}, DOMAINS)
    assert mix.as_dict() == {"web": 0.75, "code": 0.25, "math_prose": 0.0}
    assert mix.p_columns() == {"p_web": 0.75, "p_code": 0.25, "p_math_prose": 0.0}
    assert mix.pairs() == (("web", 0.75), ("code", 0.25), ("math_prose", 0.0))
    np.testing.assert_array_equal(mix.as_array(["math_prose", "web", "code"]), [0.0, 0.75, 0.25])
    # without a domain list the keys are the domains
    assert Mixture.from_dict({"p_a": 0.4, "p_b": 0.6}).domains == ("a", "b")
    # a share > 0 on a domain the target list lacks is an error, a zero one is dropped
    with pytest.raises(MixlawInputError, match="unknown domain 'web'"):
        mix.as_array(["code", "math_prose"])
    assert Mixture.from_dict({"a": 1.0, "b": 0.0}).as_array(["a"]).tolist() == [1.0]


def test_mixtures_array_from_tables_and_arrays():
    frame = pd.DataFrame(
        {"run": ["r1", "r2"], "web": [0.5, 1.0], "p_code": [0.3, 0.0], "Math-Prose": [0.2, 0]}
    )
    X = mixtures_array(frame, DOMAINS)
    np.testing.assert_array_equal(X, [[0.5, 0.3, 0.2], [1.0, 0.0, 0.0]])
    np.testing.assert_array_equal(mixtures_array([[0.5, 0.3, 0.2]], DOMAINS), [WANT])
    np.testing.assert_array_equal(
        mixtures_array({"p_web": 0.5, "p_code": 0.3, "p_math_prose": 0.2}, DOMAINS), [WANT]
    )
    with pytest.raises(MixlawInputError, match="mixtures: missing column\\(s\\) p_math_prose"):
        mixtures_array(frame.drop(columns="Math-Prose"), DOMAINS)
    with pytest.raises(MixlawInputError, match="row 2: proportions sum to 0.9"):
        mixtures_array([[0.5, 0.3, 0.2], [0.5, 0.2, 0.2]], DOMAINS)
    with pytest.raises(MixlawInputError, match="unknown training domain column\\(s\\) p_books"):
        mixtures_array(frame.assign(p_books=0.0), DOMAINS)


# --------------------------------------------------------------------------------------------- tolerance


def test_one_sum_tolerance_for_single_mixtures_and_table_rows():
    assert SUM_TOLERANCE == 1e-6
    inside, outside = 0.5 + 0.9 * SUM_TOLERANCE, 0.5 + 2 * SUM_TOLERANCE
    assert Mixture.from_dict({"a": inside, "b": 0.5}).shares == (inside, 0.5)  # kept as given, not rescaled
    with pytest.raises(MixlawInputError, match="proportions sum to 1.000002, not 1"):
        Mixture.from_dict({"a": outside, "b": 0.5})
    frame = pd.DataFrame({"p_a": [inside, outside], "p_b": [0.5, 0.5]})
    with pytest.raises(MixlawInputError, match="row 2: proportions sum to 1.000002"):
        check_table(frame, "t")
    checked = check_table(frame.iloc[:1], "t")  # a row within the tolerance is divided by its sum, as before
    assert checked[["p_a", "p_b"]].sum(axis=1).iloc[0] == pytest.approx(1, abs=1e-15)


def test_hand_rounded_shares_need_renormalize_everywhere(tmp_path, caplog):
    thirds = {"a": 0.333, "b": 0.333, "c": 0.333}
    with pytest.raises(
        MixlawInputError, match="sum to 0.999, not 1 \\(pass --renormalize to rescale\\)"
    ) as exc:
        Mixture.from_dict(thirds, source="--baseline")
    assert one_line(exc).startswith("--baseline: ")
    with caplog.at_level(logging.WARNING, logger="mixlaw.mixture"):
        mix = Mixture.from_dict(thirds, renormalize=True)
    assert sum(mix.shares) == pytest.approx(1) and "renormalized" in caplog.text
    # export used a 1e-3 tolerance and rescaled silently; now it is the same rule
    path = tmp_path / "opt.json"
    path.write_text(json.dumps({"mixture": {f"p_{d}": v for d, v in thirds.items()}}))
    with pytest.raises(MixlawInputError, match="opt.json: proportions sum to 0.999"):
        load_mixture(path)
    assert sum(load_mixture(path, renormalize=True).weights.values()) == pytest.approx(1)
    with pytest.raises(MixlawInputError, match="all zero"):
        Mixture.from_dict({"a": 0.0, "b": 0.0}, renormalize=True)


# --------------------------------------------------------------------------------------------- messages


@pytest.mark.parametrize(
    "spec, message",
    [
        (
            {"web": 0.5, "nope": 0.5},
            "--prior: unknown domain 'nope' (training domains: web, code, math_prose)",
        ),
        ({"web": 1.2, "code": -0.2}, "--prior: web: proportion 1.2 outside [0, 1]"),
        ({"web": "lots"}, "--prior: web: 'lots' is not a number"),
        ({"web": True}, "--prior: web: True is not a number"),
        ({"web": float("nan")}, "--prior: web: nan is not a finite number"),
        ({"web": 0.5, "p_web": 0.5}, "--prior: domain 'web' given twice"),
        ("web=0.5,code", "--prior: expected name=value pairs separated by commas, got 'code'"),
        ("web=half", "--prior: web: 'half' is not a number"),
        ([0.5, 0.5], "--prior: expected 3 shares, got 2"),
        ({"web": 0.5, "code": 0.6}, "--prior: proportions sum to 1.1, not 1 (pass --renormalize to rescale)"),
    ],
)
def test_error_messages_name_the_source_and_the_value(spec, message):
    with pytest.raises(MixlawInputError) as exc:
        Mixture.parse(spec, DOMAINS, "--prior")
    assert one_line(exc) == message


def test_runs_table_messages_are_kept():
    frame = pd.DataFrame(
        {"run": ["r1", "r2"], "p_a": [0.5, 0.5], "p_b": [0.5, 0.6], "valid_domain": "a", "loss": 2.0}
    )
    with pytest.raises(MixlawInputError) as exc:
        validate_runs(frame, "runs.csv")
    assert one_line(exc) == (
        "runs.csv: line 3: proportions sum to 1.1, not 1 (1 row(s) affected; pass --renormalize to rescale them)"
    )
    with pytest.raises(MixlawInputError, match="runs.csv: line 2: column p_b: proportion 1.5 outside"):
        validate_runs(frame.assign(p_b=[1.5, 0.5]), "runs.csv")


# --------------------------------------------------------------------------------------------- names


def test_one_name_normalizer():
    assert canonical_name("math-prose") == "math_prose"
    assert canonical_name("Math Prose.v2") == "math_prose_v2"
    known = Domains(["web", "math_prose", "ArXiv"])
    for spelling in (
        "math_prose",
        "math-prose",
        "p_math_prose",
        "p_math-prose",
        "Math-Prose",
        " math-prose ",
    ):
        assert known.resolve(spelling) == "math_prose"
    assert known.resolve("arxiv") == "ArXiv"  # names are matched, never renamed
    assert known.find("mathprose") is None
    with pytest.raises(MixlawInputError, match="mixture: domain 'A-B' is ambiguous: it matches a_b, a-b"):
        Domains(["a_b", "a-b"]).resolve("A-B")
    # config spelling in, the domain list's spelling out
    assert Mixture.parse("math-prose=0.25,web=0.75", DOMAINS).as_dict() == {
        "web": 0.75,
        "code": 0.0,
        "math_prose": 0.25,
    }


def test_export_paths_accept_both_spellings():
    assert parse_paths(["math-prose=s3://b/m", "p_web=s3://b/w"], DOMAINS) == {
        "math_prose": "s3://b/m",
        "web": "s3://b/w",
    }
    with pytest.raises(MixlawInputError, match="unknown domain 'books'"):
        parse_paths(["books=x"], DOMAINS)


def test_p_column_mapping():
    frame = pd.DataFrame({"Web": [1.0], "math-prose": [0.0], "code": [0.0], "run": ["r"]})
    assert list(to_p_columns(frame, DOMAINS).columns) == ["p_web", "p_math_prose", "p_code", "run"]
    with pytest.raises(MixlawInputError, match="two columns for domain 'web'"):
        to_p_columns(frame.assign(p_web=1.0), DOMAINS)


# --------------------------------------------------------------------------------------------- fixed sites


def test_report_mixture_vector_no_longer_renormalizes_silently():
    # before: {"p_a": 0.45, "p_b": 0.45} was shown as (0.5, 0.5), a mixture other than the file's
    with pytest.raises(MixlawInputError, match="optimum.json: mixture: proportions sum to 0.9, not 1"):
        mixture_vector({"p_a": 0.45, "p_b": 0.45}, ["a", "b"])
    np.testing.assert_array_equal(mixture_vector({"p_a": 0.25, "b": 0.75}, ["a", "b"]), [0.25, 0.75])
    assert mixture_vector({"p_zz": 1.0}, ["a", "b"]) is None  # no mixture over these domains
    assert mixture_vector(None, ["a", "b"]) is None


def _old_mixture_tuple(mix: dict[str, float], domains: list[str]) -> tuple[tuple[str, float], ...]:
    """run._mixture_tuple before the mixture module (copied verbatim): RunSpec hashes depend on its values."""
    values = np.array([max(0.0, float(mix.get(d, 0.0))) for d in domains])
    values = np.round(values / values.sum(), 6)
    values[int(np.argmax(values))] += 1.0 - values.sum()
    return tuple((d, float(round(v, 8))) for d, v in zip(domains, values))


def test_run_mixture_tuples_and_runspec_hashes_are_unchanged():
    rng = np.random.default_rng(0)
    domains = ["web", "code", "math-prose", "books", "wiki"]
    cases = [{d: 1.0 for d in domains}, {d: int(n) for d, n in zip(domains, rng.integers(1, 10**9, 5))}]
    cases += [dict(zip(domains, rng.dirichlet(np.ones(5)).tolist())) for _ in range(300)]
    cases += [dict(zip(domains, (np.round(rng.dirichlet(np.ones(5)), 4)).tolist())) for _ in range(100)]
    for mix in cases:  # mixtures, token counts, uniform weights and 4-decimal shares
        old, new = _old_mixture_tuple(mix, domains), _mixture_tuple(mix, domains)
        assert new == old
        assert RunSpec(new, 2, 64, 100).run_id == RunSpec(old, 2, 64, 100).run_id
    # a run id written by an earlier version (tests/test_train_sweep pins ids of real sweeps too)
    pairs = _mixture_tuple({"web": 2, "code": 1}, ["web", "code"])
    assert pairs == (("web", 0.666667), ("code", 0.333333))


# --------------------------------------------------------------------------------------------- FitData


def _table() -> RunsTable:
    rows = []
    for r, a in enumerate([0.0, 0.25, 0.5, 0.75, 1.0]):
        for step in (100, 200):
            for valid, base in (("x", 2.0), ("y", 3.0)):
                loss = base + (1 - a) * (0.2 if valid == "x" else 0.1) + 50 / step
                rows.append(
                    {
                        "run": f"r{r}",
                        "model": "m",
                        "step": step,
                        "p_a": a,
                        "p_b": 1 - a,
                        "valid_domain": valid,
                        "loss": loss,
                    }
                )
    return RunsTable(validate_runs(pd.DataFrame(rows), "t"), "t")


def test_fitdata_from_table_is_prepare():
    table = _table()
    data = FitData.from_table(table, step=200)
    old = prepare(table, step=200)
    np.testing.assert_array_equal(data.X, old.X)
    np.testing.assert_array_equal(data.total, old.total)
    assert data.selection == {"step": 200} and data.targets == ["x", "y"] and data.domains == ["a", "b"]
    reordered = FitData.from_table(table, load_weights(None, ["x", "y"]), domains=["b", "a"], step=200)
    np.testing.assert_array_equal(reordered.X, data.X[:, ::-1])
    with pytest.raises(MixlawInputError, match="missing training domain column\\(s\\) p_c of the law"):
        FitData.from_table(table, domains=["a", "c"], step=200)
    with pytest.raises(MixlawInputError, match="several step values remain"):
        FitData.from_table(table)


def test_fitdata_from_wide_computes_the_total_from_the_targets():
    data = FitData.from_table(_table(), step=100)
    wide = data.frame.drop(columns="total")
    again = FitData.from_wide(wide, data.weights, data.domains, source="w")
    np.testing.assert_allclose(again.total, data.total, rtol=1e-15)
    weighted = FitData.from_wide(wide, data.weights, data.domains, total_weights={"x": 1.0, "y": 0.0})
    np.testing.assert_array_equal(weighted.total, wide["x"].to_numpy())
    with pytest.raises(MixlawInputError, match="w: missing column\\(s\\) p_c"):
        FitData.from_wide(wide, data.weights, ["a", "c"], source="w")


# --------------------------------------------------------------------------------------------- writer


def test_one_runs_table_writer(tmp_path):
    frame = pd.DataFrame(
        {"run": ["r"], "p_a": [1 / 3], "p_b": [2 / 3], "valid_domain": ["a"], "loss": [2.123456789123]}
    )
    write_runs(frame, tmp_path / "full.csv")
    write_runs(frame, tmp_path / "trainer.csv", TRAINER_FLOAT_FORMAT)
    # the trainer's and the sweep's CSV bytes, as they were written before (frame.to_csv with %.8g)
    assert (tmp_path / "trainer.csv").read_text() == frame.to_csv(index=False, float_format="%.8g")
    assert pd.read_csv(tmp_path / "full.csv")["loss"].iloc[0] == 2.123456789123
    for name in ("t.parquet", "t.jsonl"):
        write_runs(frame, tmp_path / name)
    assert pd.read_parquet(tmp_path / "t.parquet").equals(frame)
