"""Files and values are checked where they enter the library (issue 17): law files, runs tables, --param.

Every failure is one MixlawInputError naming the file and the key; crafted LightGBM model text in a LAW.json
is refused before LightGBM parses it."""

from __future__ import annotations

import json
import logging
import re

import numpy as np
import pytest

from mixlaw.errors import MixlawInputError
from mixlaw.fitted import FittedLaw, fit_law, prepare
from mixlaw.laws import LAWS, get_law, parse_hyper
from mixlaw.mixture import Mixture
from mixlaw.runs import read_runs, validate_runs
from mixlaw.schedule import FittedSchedule
from tests.conftest import make_runs


@pytest.fixture(scope="module")
def law_dict() -> dict:
    data = prepare(RunsTableFromFrame(), step=None)
    return fit_law(data, "dml", {"restarts": 4}).to_dict()


def RunsTableFromFrame():
    from mixlaw.runs import RunsTable

    return RunsTable(validate_runs(make_runs(), "runs.csv"), "runs.csv")


def _load(data, tmp_path, name="LAW.json") -> FittedLaw:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return FittedLaw.load(path)


# -- hyper-parameters ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pair, named",
    [
        ("ridge=nan", "ridge"),
        ("ridge=abc", "ridge"),
        ("ridge=-1", "ridge"),
        ("restarts=0", "restarts"),
        ("restarts=-3", "restarts"),
        ("restarts=2.5", "restarts"),
        ("seed=-1", "seed"),
        ("delta=inf", "delta"),
        ("cv_folds=1", "cv_folds"),
        ("nokey=1", "nokey"),
        ("ridge", "ridge"),
    ],
)
def test_bad_param_is_one_line_naming_it(pair, named):
    with pytest.raises(MixlawInputError, match=re.escape(named)) as info:
        parse_hyper(get_law("dml"), [pair])
    assert "\n" not in str(info.value)


def test_good_params_are_normalized():
    assert parse_hyper(get_law("dml"), ["ridge=auto", "ridge=0.1", "restarts=1e1"]) == {
        "ridge": 0.1,
        "restarts": 10,
    }
    assert parse_hyper(get_law("regmix-lgbm"), ["min_data_in_leaf=5"]) == {"min_data_in_leaf": 5}
    with pytest.raises(MixlawInputError, match="valid_fraction"):
        parse_hyper(get_law("regmix-lgbm"), ["valid_fraction=1"])


@pytest.mark.parametrize("name", sorted(LAWS))
def test_every_law_accepts_its_own_defaults(name):
    law_class = LAWS[name]
    assert law_class().hyper == law_class.defaults  # the specs agree with the defaults


def test_constructor_checks_values_too():
    with pytest.raises(MixlawInputError, match="seed"):
        get_law("dml")(seed=-1)
    with pytest.raises(MixlawInputError, match="restarts"):
        get_law("olmix")(restarts=float("nan"))


# -- LAW.json -----------------------------------------------------------------------------------------------


def test_valid_law_round_trips(law_dict, tmp_path):
    fitted = _load(law_dict, tmp_path)
    X = np.full((1, 3), 1 / 3)
    assert np.allclose(fitted.law.predict(X), FittedLaw.from_dict(law_dict).law.predict(X))


@pytest.mark.parametrize(
    "edit, named",
    [
        (lambda d: {**d, "schema_version": "1"}, "schema_version"),
        (lambda d: {**d, "schema_version": 99}, "newer mixlaw"),
        (lambda d: {**d, "params": {}}, "log_c"),
        (lambda d: {**d, "params": {k: "x" for k in d["params"]}}, "params"),
        (lambda d: {**d, "params": None, "law": 3}, "law"),
        (lambda d: {**d, "domains": None}, "domains"),
        (lambda d: {**d, "domains": ["a", "a", "b"]}, "repeated"),
        (lambda d: {**d, "domains": ["a", "b"]}, "3 domains"),
        (lambda d: {**d, "targets": ["a"]}, "target"),
        (lambda d: {**d, "total_weights": {t: "x" for t in d["targets"]}}, "total_weights"),
        (lambda d: {**d, "hyper": {**d["hyper"], "restarts": "many"}}, "restarts"),
        (lambda d: {**d, "hyper": []}, "hyper"),
        (lambda d: {**d, "law": "no-such-law"}, "no-such-law"),
        (lambda d: [d], "JSON object"),
    ],
)
def test_hand_edited_law_file_is_one_line_naming_file_and_key(law_dict, tmp_path, edit, named):
    with pytest.raises(MixlawInputError) as info:
        _load(edit(law_dict), tmp_path)
    message = str(info.value)
    assert "LAW.json" in message and named in message and "\n" not in message


def test_law_fitted_on_other_domains_than_the_mixtures(law_dict, tmp_path):
    fitted = _load(law_dict, tmp_path)
    with pytest.raises(MixlawInputError, match="fitted on 3 domains, got 2"):
        fitted.law.predict(np.array([[0.5, 0.5]]))


# -- runs tables --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [-1.0, 0.0, 1e6])
def test_impossible_cross_entropy_is_refused(scale, tmp_path):
    frame = make_runs()
    frame["loss"] = frame["loss"] * scale
    with pytest.raises(MixlawInputError, match="column loss"):
        validate_runs(frame, "runs.csv")


def test_implausible_loss_warns(caplog):
    frame = make_runs()
    frame["loss"] = frame["loss"] * 0 + 150.0
    with caplog.at_level(logging.WARNING, logger="mixlaw"):
        validate_runs(frame, "runs.csv")
    assert "implausible" in caplog.text


def test_a_metric_column_allows_other_measures():
    frame = make_runs().assign(metric="accuracy")
    frame["loss"] = -frame["loss"]
    validate_runs(frame, "runs.csv")  # not a cross-entropy: negative values are allowed
    with pytest.raises(MixlawInputError, match="column loss"):
        validate_runs(frame.assign(metric="nats"), "runs.csv")


def test_whitespace_duplicate_column_is_named(tmp_path):
    frame = make_runs()
    frame["p_a "] = frame["p_a"]
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(MixlawInputError, match=r"column 'p_a' appears twice"):
        read_runs(path)


@pytest.mark.parametrize(
    "flag, kwargs", [("--step-tol", {"step_tol": float("nan")}), ("--params", {"params": 0})]
)
def test_selection_numbers_are_checked(flag, kwargs):
    with pytest.raises(MixlawInputError, match=flag):
        RunsTableFromFrame().select(**kwargs)


def test_stray_object_is_not_a_mixture(tmp_path):
    path = tmp_path / "OPT.json"
    path.write_text(json.dumps({"x": 1}))
    with pytest.raises(MixlawInputError, match="OPT.json"):
        Mixture.from_file(path)


# -- schedule-law files -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, named",
    [
        ([], "JSON object"),
        ({"schema": "mixlaw.schedule-law/9"}, "newer mixlaw"),
        ({"schema": "other"}, "not a schedule law"),
        (
            {
                "schema": "mixlaw.schedule-law/1",
                "domains": ["a"],
                "targets": ["t"],
                "target_weights": {"t": "x"},
            },
            "target_weights.t",
        ),
        (
            {
                "schema": "mixlaw.schedule-law/1",
                "domains": ["a", "b"],
                "targets": ["t"],
                "target_weights": {"t": 1},
                "law": "schedule-dml",
                "hyper": {},
                "params": {"log_c": [0.0], "theta": [[0.0, 0.0, 0.0]]},
            },
            "gamma",
        ),
    ],
)
def test_bad_schedule_law_file(data, named, tmp_path):
    path = tmp_path / "schedule.json"
    path.write_text(json.dumps(data))
    with pytest.raises(MixlawInputError) as info:
        FittedSchedule.load(path)
    assert "schedule.json" in str(info.value) and named in str(info.value)


# -- LightGBM model text --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lgbm_law() -> dict:
    pytest.importorskip("lightgbm")
    rng = np.random.default_rng(0)
    X = rng.dirichlet(np.ones(3), 40)
    Y = np.stack([X @ [1.0, 2.0, 3.0] + 0.1, X @ [3.0, 1.0, 1.0]], axis=1)
    return get_law("regmix-lgbm")(rounds=20).fit(X, Y).to_dict()


def _tree_line(text: str, key: str, tree: int = 0) -> tuple[int, str]:
    block = text.index(f"Tree={tree}\n")
    start = text.index(f"\n{key}=", block) + 1
    return start, text[start : text.index("\n", start)]


def _edit(text: str, key: str, change) -> str:
    start, line = _tree_line(text, key)
    values = line.split("=", 1)[1].split()
    return text[:start] + f"{key}=" + " ".join(change(values)) + text[start + len(line) :]


def _resize(text: str) -> str:
    """Make tree_sizes agree with edited trees (as a careful attacker would)."""
    body = text[: text.index("end of trees")]
    starts = [m.start() for m in re.finditer(r"^Tree=", body, re.M)]
    sizes = [len(body[a:b]) for a, b in zip(starts, starts[1:] + [len(body)])]
    return re.sub(r"^tree_sizes=.*$", "tree_sizes=" + " ".join(map(str, sizes)), text, count=1, flags=re.M)


CRAFTED = {
    "cycle": lambda t: _resize(_edit(t, "left_child", lambda v: ["0", *v[1:]])),
    "child out of range": lambda t: _resize(_edit(t, "right_child", lambda v: ["999", *v[1:]])),
    "feature out of range": lambda t: _resize(_edit(t, "split_feature", lambda v: ["7", *v[1:]])),
    "NaN threshold": lambda t: _resize(_edit(t, "threshold", lambda v: ["nan", *v[1:]])),
    "cut trees": lambda t: t[: t.index("Tree=3")] + t[t.index("end of trees") :],
    "cut text": lambda t: t[: len(t) // 2],
    "wrong feature count": lambda t: t.replace("max_feature_idx=2", "max_feature_idx=5", 1),
}


@pytest.mark.parametrize("name", sorted(CRAFTED))
@pytest.mark.parametrize("with_hash", [True, False])
def test_crafted_lightgbm_model_is_refused(lgbm_law, tmp_path, name, with_hash):
    data = json.loads(json.dumps(lgbm_law))
    data["params"]["models"][0] = CRAFTED[name](data["params"]["models"][0])
    if not with_hash:  # a file written before the hash was kept: the structure check alone catches it
        del data["params"]["sha256"]
    with pytest.raises(MixlawInputError) as info:
        get_law("regmix-lgbm").from_dict(data)
    message = str(info.value)
    assert "models[0]" in message and "\n" not in message
    if with_hash:
        assert "sha256" in message  # checked before any parsing


def test_old_lightgbm_law_without_hash_still_loads(lgbm_law):
    data = json.loads(json.dumps(lgbm_law))
    del data["params"]["sha256"]
    X = np.full((2, 3), 1 / 3)
    law_class = get_law("regmix-lgbm")
    assert np.array_equal(law_class.from_dict(data).predict(X), law_class.from_dict(lgbm_law).predict(X))
