"""Peer methods behind the mixlaw law interface, each implemented from its published description.

- `regmix-lgbm`:   RegMix's regressor: gradient-boosted trees (LightGBM) per target on the proportions,
                   learning rate 0.01, up to 1000 rounds, early stopping (3 rounds) on an internal validation
                   split of the fitting mixtures, then refitted on all of them with that many rounds.
                   Saved as LightGBM's own text model format (never pickle).
- `regmix-linear`: RegMix's linear baseline: L_i = sum_j w_ij r_j (ordinary least squares; on the simplex
                   the intercept is the sum of the weights).
- `log-linear`:    log L_i = sum_j b_ij r_j (least squares in log space): the exponential law with c = 0.
- `olmix`:         Olmix's default fit of L_i = exp(log c_i) + exp(t_i . r): L-BFGS on a Huber loss
                   (delta 0.02), 100 steps from 300 starts (10 values of log c in [-2, 1.5] x 30 random t,
                   own-domain coefficient negative), best kept. Same model as `dml`; kept as a reference.
                   From 100 mixtures on, the same starts run through mixlaw's batched LM engine instead
                   (10 iterations each, the 30 best per target to convergence): seconds instead of minutes.
- `bimix`:         BiMix: L_i = A_i / (r_i + eps)^alpha_i with r_i the share of the training domain(s) mapped
                   to target i; step-aware when the data has several steps: L_i = (B_i / s^beta_i + C_i) /
                   (r_i + eps)^alpha_i (A_i is absorbed into B_i and C_i, which is the same family).
- `gp`:            Gaussian-process regression on the simplex (ARD squared-exponential kernel + white noise,
                   constant mean, hyper-parameters by maximum marginal likelihood shared across targets).
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from mixlaw.errors import MixlawInputError
from mixlaw.files import read_json
from mixlaw.fitting import fit_multistart, huber, levenberg_marquardt
from mixlaw.laws.base import FitContext, Hyper, MixingLaw
from mixlaw.laws.dml import LARGE_SWARM, exp_model, is_large_swarm

# olmix on large swarms (`is_large_swarm`): LM iterations every start gets, then how many per target continue.
OLMIX_SCREEN_ITER = 10
OLMIX_KEEP = 30

# ------------------------------------------------------------------------------------------ RegMix (LightGBM)


def _lightgbm():
    try:
        import lightgbm
    except ImportError:
        raise MixlawInputError("law regmix-lgbm needs LightGBM: pip install 'mixlaw[peers]'") from None
    return lightgbm


class RegMixLGBM(MixingLaw):
    name = "regmix-lgbm"
    description = "RegMix: LightGBM trees per target on the proportions (lr 0.01, <=1000 rounds, early stopping on an internal split)"
    defaults = {
        "learning_rate": 0.01,
        "rounds": 1000,
        "early_stopping": 3,
        "valid_fraction": 0.2,
        "min_data_in_leaf": "auto",
        "num_leaves": 31,
        "seed": 42,
        "threads": 1,
    }
    hyper_schema = {
        "learning_rate": Hyper(float, 0, low_open=True),
        "rounds": Hyper(int, 1),
        "early_stopping": Hyper(int, 1),
        "valid_fraction": Hyper(float, 0, 1, low_open=True, high_open=True),
        "min_data_in_leaf": Hyper(int, 1),
        "num_leaves": Hyper(int, 2),
        "threads": Hyper(int, 1),
    }
    seeded = False  # keeps RegMix's own seed (42) in comparisons
    nonparametric = True
    piecewise_constant = True
    auto_candidate = 5
    auto_min_mixtures = 100  # Olmix reports that LightGBM needs more than ~100 runs

    def n_parameters(self, n_domains: int) -> int:
        return 5  # non-parametric; needs a handful of mixtures for the internal split

    def _params(self, n: int) -> dict[str, Any]:
        leaf = self.hyper["min_data_in_leaf"]
        # LightGBM's default 20 rows per leaf allows no split at all on a 26-run swarm; scale it down there.
        leaf = int(leaf) if str(leaf) != "auto" else int(min(20, max(2, n // 10)))
        return {
            "objective": "regression",
            "boosting": "gbdt",
            "learning_rate": float(self.hyper["learning_rate"]),
            "metric": ["l1", "l2"],
            "seed": int(self.hyper["seed"]),
            "num_leaves": int(self.hyper["num_leaves"]),
            "min_data_in_leaf": leaf,
            "min_data_in_bin": 1,
            "verbose": -1,
            "num_threads": int(self.hyper["threads"]),
            "deterministic": True,
            "force_row_wise": True,
        }

    def _fit(self, X: np.ndarray, Y: np.ndarray, context: FitContext) -> dict[str, Any]:
        lgb = _lightgbm()
        params = self._params(len(X))
        # Internal validation split by mixture, drawn from the fitting data only.
        keys = np.unique(np.round(X, 6), axis=0, return_inverse=True)[1].ravel()
        n_mix = keys.max() + 1
        rng = np.random.default_rng(int(self.hyper["seed"]))
        n_valid = max(1, int(round(float(self.hyper["valid_fraction"]) * n_mix)))
        valid = np.isin(keys, rng.permutation(n_mix)[:n_valid])
        models, rounds = [], []
        for t in range(Y.shape[1]):
            train_set = lgb.Dataset(X[~valid], Y[~valid, t], params={"verbose": -1, "min_data_in_bin": 1})
            valid_set = lgb.Dataset(X[valid], Y[valid, t], reference=train_set)
            booster = lgb.train(
                params,
                train_set,
                num_boost_round=int(self.hyper["rounds"]),
                valid_sets=[valid_set],
                callbacks=[lgb.early_stopping(int(self.hyper["early_stopping"]), verbose=False)],
            )
            best = max(1, int(booster.best_iteration or self.hyper["rounds"]))
            full = lgb.train(
                params,
                lgb.Dataset(X, Y[:, t], params={"verbose": -1, "min_data_in_bin": 1}),
                num_boost_round=best,
            )
            models.append(full.model_to_string())
            rounds.append(best)
        return {"rounds": rounds, "models": models, "sha256": [_sha256(m) for m in models]}

    def _check_params(self, params: dict[str, Any]) -> None:
        """A law file's models: one LightGBM model text per target, each matching its stored sha256 (files
        written before the hash was kept have none; the structure check in `_load` still applies)."""
        models, rounds = params.get("models"), params.get("rounds")
        if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
            raise MixlawInputError("params.models: expected a list of LightGBM model texts (law regmix-lgbm)")
        if not isinstance(rounds, list) or len(rounds) != len(models):
            raise MixlawInputError(f"params.rounds: expected a list of {len(models)} round counts")
        for t, count in enumerate(rounds):
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise MixlawInputError(f"params.rounds[{t}]: expected a positive integer, got {count!r}")
        hashes = params.get("sha256")
        if hashes is None:
            return
        if not isinstance(hashes, list) or len(hashes) != len(models):
            raise MixlawInputError(f"params.sha256: expected a list of {len(models)} hex digests")
        for t, (model, digest) in enumerate(zip(models, hashes)):
            if _sha256(model) != digest:
                raise MixlawInputError(
                    f"params.models[{t}]: the model text does not match its sha256 (changed or corrupted)"
                )

    def _load(self) -> None:
        lgb = _lightgbm()
        n_features = self.n_domains_
        rounds = self.params_.get("rounds") or [None] * len(self.params_["models"])
        texts = [
            check_lgbm_model(text, n_features, f"params.models[{t}]", max_trees=rounds[t])
            for t, text in enumerate(self.params_["models"])
        ]
        self.boosters_ = [lgb.Booster(model_str=text) for text in texts]

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return np.stack([b.predict(X) for b in self.boosters_], axis=1)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


_TREE_KEYS = {
    "num_leaves",
    "num_cat",
    "split_feature",
    "split_gain",
    "threshold",
    "decision_type",
    "left_child",
    "right_child",
    "leaf_value",
    "leaf_weight",
    "leaf_count",
    "internal_value",
    "internal_weight",
    "internal_count",
    "is_linear",
    "shrinkage",
}
_INTERNAL_KEYS = ("split_feature", "split_gain", "threshold", "decision_type", "left_child", "right_child")
_INTERNAL_KEYS += ("internal_value", "internal_weight", "internal_count")
_LEAF_KEYS = ("leaf_value", "leaf_weight", "leaf_count")


def check_lgbm_model(text: str, n_features: int | None, where: str, max_trees: int | None = None) -> str:
    """Check LightGBM model text before LightGBM's C++ parser sees it, and return the part it may parse (header
    and trees, without the parameters section). A crafted or corrupted text is a one-line MixlawInputError
    naming `where` instead of a crash (out-of-range indices), a hang (a child cycle) or silently different
    predictions (cut trees, NaN thresholds). Checked: a single-output regression header with `n_features`
    features; `tree_sizes` matching the trees; per tree the array lengths, split features in range, finite
    thresholds and leaf values, no categorical or linear trees, and child indices forming one acyclic tree."""

    def fail(what: str) -> MixlawInputError:
        return MixlawInputError(f"{where}: not a valid LightGBM model ({what})")

    if "end of trees" not in text:
        raise fail("no 'end of trees' line: the text is cut")
    body = text[: text.index("end of trees")]
    starts = [m.start() for m in re.finditer(r"^Tree=", body, re.M)]
    if not body.startswith("tree\n") or not starts:
        raise fail("no header or no trees")
    header = dict(line.split("=", 1) for line in body[: starts[0]].splitlines()[1:] if "=" in line)
    for key, wanted in (("num_class", "1"), ("num_tree_per_iteration", "1")):
        if header.get(key) != wanted:
            raise fail(f"{key} must be {wanted}, got {header.get(key)!r}")
    try:
        max_feature = int(header.get("max_feature_idx", ""))
        sizes = [int(v) for v in header.get("tree_sizes", "").split()]
    except ValueError:
        raise fail("max_feature_idx or tree_sizes is not an integer") from None
    if n_features is not None and max_feature != n_features - 1:
        raise fail(f"max_feature_idx {max_feature} for a law on {n_features} domains")
    if max_feature < 0 or len(header.get("feature_names", "").split()) != max_feature + 1:
        raise fail("feature_names do not match max_feature_idx")
    blocks = [body[a:b] for a, b in zip(starts, starts[1:] + [len(body)])]
    if max_trees is not None and len(blocks) > max_trees:
        raise fail(f"{len(blocks)} trees but {max_trees} rounds")
    if sizes != [len(block.encode("utf-8")) for block in blocks]:
        raise fail(f"tree_sizes do not match the {len(blocks)} trees (cut or edited trees)")
    for i, block in enumerate(blocks):
        _check_tree(block, i, max_feature, fail)
    return body + "end of trees\n"


def _check_tree(block: str, index: int, max_feature: int, fail) -> None:
    lines = block.splitlines()
    if lines[0] != f"Tree={index}":
        raise fail(f"tree {index} is labelled {lines[0]!r}")
    fields = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    unknown = sorted(set(fields) - _TREE_KEYS)
    if unknown:
        raise fail(f"tree {index}: unexpected field(s) {', '.join(unknown)}")

    def numbers(key: str, kind: type, count: int) -> list:
        try:
            values = [kind(v) for v in fields.get(key, "").split()]
        except ValueError:
            raise fail(f"tree {index}: {key} is not a list of {kind.__name__}s") from None
        if len(values) != count:
            raise fail(f"tree {index}: {key} has {len(values)} values, expected {count}")
        if kind is float and not all(math.isfinite(v) for v in values):
            raise fail(f"tree {index}: {key} has a value that is not finite")
        return values

    (n_leaves,) = numbers("num_leaves", int, 1)
    if n_leaves < 1:
        raise fail(f"tree {index}: num_leaves {n_leaves}")
    if fields.get("num_cat", "0") != "0" or fields.get("is_linear", "0") != "0":
        raise fail(f"tree {index}: categorical or linear trees are not made by regmix-lgbm")
    numbers("shrinkage", float, 1)
    for key in _LEAF_KEYS:
        if key in fields or key == "leaf_value":
            numbers(key, float, n_leaves)
    if n_leaves == 1:
        return
    internal = n_leaves - 1
    for key in _INTERNAL_KEYS:
        if key in fields or key in (
            "split_feature",
            "threshold",
            "decision_type",
            "left_child",
            "right_child",
        ):
            numbers(
                key,
                float if key not in ("split_feature", "decision_type", "left_child", "right_child") else int,
                internal,
            )
    features = numbers("split_feature", int, internal)
    if any(f < 0 or f > max_feature for f in features):
        raise fail(f"tree {index}: split_feature out of range 0..{max_feature}")
    if any(d < 0 or d > 15 or d & 1 for d in numbers("decision_type", int, internal)):
        raise fail(f"tree {index}: decision_type must be a numerical split")
    left, right = numbers("left_child", int, internal), numbers("right_child", int, internal)
    # children: an internal node j >= 0 or a leaf ~k (k = -child - 1); from the root every node exactly once
    seen_nodes, seen_leaves, stack = {0}, set(), [0]
    while stack:
        node = stack.pop()
        for child in (left[node], right[node]):
            if child >= 0:
                if child >= internal or child in seen_nodes:
                    raise fail(f"tree {index}: child {child} of node {node} is out of range or a cycle")
                seen_nodes.add(child)
                stack.append(child)
            else:
                leaf = -child - 1
                if leaf >= n_leaves or leaf in seen_leaves:
                    raise fail(f"tree {index}: leaf {leaf} of node {node} is out of range or reached twice")
                seen_leaves.add(leaf)
    if len(seen_nodes) != internal or len(seen_leaves) != n_leaves:
        raise fail(f"tree {index}: nodes not reachable from the root")


# ------------------------------------------------------------------------------------------ linear baselines


class RegMixLinear(MixingLaw):
    name = "regmix-linear"
    description = "RegMix linear baseline: L_i = sum_j w_ij r_j (least squares; the intercept is absorbed on the simplex)"
    auto_candidate = 4

    def n_parameters(self, n_domains: int) -> int:
        return n_domains

    def _fit(self, X: np.ndarray, Y: np.ndarray, context: FitContext) -> dict[str, Any]:
        W = np.linalg.lstsq(X, Y, rcond=None)[0]
        return {"w": W.T.tolist()}

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return X @ np.array(self.params_["w"]).T


class LogLinear(RegMixLinear):
    name = "log-linear"
    description = "log L_i = sum_j b_ij r_j (least squares in log space; the exponential law with c = 0)"
    auto_candidate = 3

    def _fit(self, X: np.ndarray, Y: np.ndarray, context: FitContext) -> dict[str, Any]:
        if (Y <= 0).any():
            raise MixlawInputError("law log-linear: not applicable: needs positive losses")
        return {"b": np.linalg.lstsq(X, np.log(Y), rcond=None)[0].T.tolist()}

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return np.exp(X @ np.array(self.params_["b"]).T)


# ------------------------------------------------------------------------------------------ domain maps


def _norm(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def read_domain_map(path: str) -> dict[str, list[str]]:
    """A domain map file: JSON {target: [training domain, ...]} or CSV with columns (target|valid_domain) and
    train_domain (one row per pair; a target may map to several training domains)."""
    p = Path(path)
    if not p.exists():
        raise MixlawInputError(f"{path}: domain map file not found")
    if p.suffix.lower() == ".json":
        data = read_json(p, "domain map")
        if not isinstance(data, dict):
            raise MixlawInputError(f"{path}: expected a JSON object {{target: [training domains]}}")
        return {str(k): [str(v)] if isinstance(v, str) else [str(x) for x in v] for k, v in data.items()}
    with p.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        raise MixlawInputError(f"{path}: domain map has no rows")
    key = "target" if "target" in rows[0] else "valid_domain" if "valid_domain" in rows[0] else None
    if key is None or "train_domain" not in rows[0]:
        raise MixlawInputError(f"{path}: domain map needs columns target (or valid_domain) and train_domain")
    out: dict[str, list[str]] = {}
    for row in rows:
        out.setdefault(row[key].strip(), []).append(row["train_domain"].strip())
    return out


def resolve_domain_map(
    targets: list[str], domains: list[str], spec: str | dict | None
) -> dict[str, list[int]]:
    """Training-domain columns of each target: from `spec` (file or dict, names of training domains with or
    without the p_ prefix) or else by name (equal after dropping case and punctuation, or one a prefix of the
    other, e.g. Wikipedia_en -> wikipedia). Targets without a match are left out."""
    norm_domains = [_norm(d) for d in domains]
    if spec is not None:
        mapping = read_domain_map(spec) if isinstance(spec, str) else spec
        out = {}
        for target, names in mapping.items():
            if target not in targets:
                continue
            cols = []
            for name in names:
                n = _norm(name[2:] if name.startswith("p_") else name)
                if n not in norm_domains:
                    raise MixlawInputError(
                        f"domain map: {target} -> {name}: not a training domain ({', '.join(domains)})"
                    )
                cols.append(norm_domains.index(n))
            out[target] = cols
        return out
    out = {}
    for target in targets:
        t = _norm(target)
        exact = [j for j, d in enumerate(norm_domains) if d == t]
        prefix = [
            j
            for j, d in enumerate(norm_domains)
            if min(len(d), len(t)) >= 3 and (t.startswith(d) or d.startswith(t))
        ]
        match = exact or (prefix if len(prefix) == 1 else [])
        if match:
            out[target] = match[:1]
    return out


# ------------------------------------------------------------------------------------------ BiMix


def bimix_step_model(r: np.ndarray, s: np.ndarray, eps: float):
    """L = (exp(log B) s^-beta + exp(log C)) (r + eps)^-alpha; theta = [alpha, log B, beta, log C]."""
    log_r = np.log(r + eps)
    log_s = np.log(s)

    def model(theta: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        alpha, log_b, beta, log_c = (theta[:, k : k + 1] for k in range(4))
        a = np.exp(-alpha * log_r[None])  # (K, n)
        bs = np.exp(log_b - beta * log_s[None])
        c = np.exp(log_c)
        pred = (bs + c) * a
        jac = np.stack(
            [-log_r[None] * pred, bs * a, -log_s[None] * bs * a, np.broadcast_to(c * a, pred.shape)], axis=2
        )
        return pred, jac

    return model


class BiMix(MixingLaw):
    name = "bimix"
    description = "BiMix: L_i = A_i / (r_i + eps)^alpha_i on the mapped training share (x (B_i/s^beta_i + C_i) with steps); needs a domain map"
    defaults = {"eps": 0.01, "delta": 0.02, "domain_map": None, "restarts": 16, "seed": 0}
    seeded = True
    auto_candidate = 6

    def n_parameters(self, n_domains: int) -> int:
        return 2

    @staticmethod
    def _shares(X: np.ndarray, columns: list[list[int]]) -> np.ndarray:
        return np.stack([X[:, c].sum(axis=1) for c in columns], axis=1)

    def _fit(self, X: np.ndarray, Y: np.ndarray, context: FitContext) -> dict[str, Any]:
        """Targets are mapped to training domains by name (`context.targets`, `context.domains`) or by the
        `domain_map`; with 3 or more distinct `context.steps` the step-aware form is fitted."""
        targets = list(context.targets or [f"target{t}" for t in range(Y.shape[1])])
        domains = list(context.domains or [f"d{j}" for j in range(X.shape[1])])
        mapping = resolve_domain_map(targets, domains, self.hyper["domain_map"])
        missing = [t for t in targets if t not in mapping]
        if missing:
            raise MixlawInputError(
                f"law bimix: not applicable: no training domain for target(s) {', '.join(missing[:6])}"
                + (" ..." if len(missing) > 6 else "")
                + " (name match failed; give --domain-map)"
            )
        columns = [mapping[t] for t in targets]
        R = self._shares(X, columns)
        eps = float(self.hyper["eps"])
        steps = context.steps
        step_aware = steps is not None and len(np.unique(steps)) >= 3
        if (Y <= 0).any():
            raise MixlawInputError("law bimix: not applicable: needs positive losses")
        params: dict[str, Any] = {
            "columns": columns,
            "map": {t: [domains[j] for j in c] for t, c in zip(targets, columns)},
            "step_aware": bool(step_aware),
        }
        if not step_aware:
            # log L = log A - alpha log(r + eps): closed form, then a Huber refinement in loss space.
            alpha, log_a = [], []
            for t in range(Y.shape[1]):
                F = np.stack([np.ones(len(X)), -np.log(R[:, t] + eps)], axis=1)
                coef = np.linalg.lstsq(F, np.log(Y[:, t]), rcond=None)[0]
                theta0 = np.array([[coef[1], coef[0]]])
                lr = np.log(R[:, t] + eps)

                def model(theta, index, lr=lr):
                    pred = np.exp(theta[:, 1:2] - theta[:, 0:1] * lr[None])
                    return pred, np.stack([-lr[None] * pred, pred], axis=2)

                result = fit_multistart(
                    model, Y[None, :, t], theta0[None], delta=self.hyper["delta"], polish=1
                )
                alpha.append(float(result.theta[0, 0]))
                log_a.append(float(result.theta[0, 1]))
            params.update({"alpha": alpha, "log_A": log_a})
            return params
        steps = np.asarray(steps, dtype=float)
        rng = np.random.default_rng(self.hyper["seed"])
        thetas = []
        for t in range(Y.shape[1]):
            model = bimix_step_model(R[:, t], steps, eps)
            F = np.stack([np.ones(len(X)), -np.log(R[:, t] + eps)], axis=1)
            coef = np.linalg.lstsq(F, np.log(Y[:, t]), rcond=None)[0]
            n = int(self.hyper["restarts"])
            beta0 = rng.uniform(0.1, 1.0, n)
            log_s = np.log(np.median(steps))
            starts = np.column_stack(
                [
                    coef[1] + rng.normal(0, 0.05, n),
                    coef[0] + beta0 * log_s + np.log(rng.uniform(0.02, 0.5, n)),
                    beta0,
                    coef[0] + np.log(rng.uniform(0.5, 0.99, n)),
                ]
            )
            result = fit_multistart(model, Y[None, :, t], starts[None], delta=self.hyper["delta"], polish=2)
            thetas.append(result.theta[0])
        thetas = np.array(thetas)
        params.update(
            {
                "alpha": thetas[:, 0].tolist(),
                "log_B": thetas[:, 1].tolist(),
                "beta": thetas[:, 2].tolist(),
                "log_C": thetas[:, 3].tolist(),
                "reference_step": float(np.max(steps)),
            }
        )
        return params

    def predict_at(self, X: np.ndarray, steps: np.ndarray | float) -> np.ndarray:
        """Predicted losses at given steps (n,) or one step; the plain form ignores steps."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        p = self.params_
        R = self._shares(X, p["columns"])
        a = (R + float(self.hyper["eps"])) ** -np.array(p["alpha"])[None]
        if not p["step_aware"]:
            return np.exp(np.array(p["log_A"]))[None] * a
        s = np.broadcast_to(np.asarray(steps, dtype=float), (len(X),))[:, None]
        return (
            np.exp(np.array(p["log_B"]))[None] * s ** -np.array(p["beta"])[None]
            + np.exp(np.array(p["log_C"]))[None]
        ) * a

    def _predict(self, X: np.ndarray) -> np.ndarray:
        """At the training data's latest step when step-aware."""
        return self.predict_at(X, self.params_.get("reference_step", 1.0))

    def _fitted_values(self, X: np.ndarray, context: FitContext) -> np.ndarray:
        """Each row at its own step when step-aware."""
        if self.params_["step_aware"]:
            return self.predict_at(X, context.steps)
        return self.predict(X)


# ------------------------------------------------------------------------------------------ Olmix default fit


def batched_lbfgs(
    value_grad, x0: np.ndarray, max_iter: int, memory: int = 10, tol: float = 1e-12
) -> tuple[np.ndarray, np.ndarray]:
    """Minimize B independent smooth problems at once with L-BFGS (backtracking Armijo line search per problem).

    value_grad(x (k, P), idx (k,) problem numbers) -> (values (k,), gradients (k, P)). Returns (x, values)."""
    x = x0.astype(float).copy()
    f, g = value_grad(x, np.arange(len(x)))
    history: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    active = np.isfinite(f)
    for _ in range(max_iter):
        if not active.any():
            break
        q = g.copy()
        alphas = []
        for s, yv, rho in reversed(history):
            a = rho * (s * q).sum(axis=1)
            q -= a[:, None] * yv
            alphas.append(a)
        if history:
            s, yv, rho = history[-1]
            gamma = np.where(rho > 0, (s * yv).sum(axis=1) / np.maximum((yv * yv).sum(axis=1), 1e-300), 1.0)
        else:
            gamma = 1.0 / np.maximum(np.abs(g).sum(axis=1), 1e-12)
        r = gamma[:, None] * q
        for (s, yv, rho), a in zip(history, reversed(alphas)):
            b = rho * (yv * r).sum(axis=1)
            r += s * (a - b)[:, None]
        d = -r
        slope = (g * d).sum(axis=1)
        uphill = slope >= 0
        d[uphill] = -g[uphill]
        slope[uphill] = -(g[uphill] ** 2).sum(axis=1)
        step = np.ones(len(x))
        x_new, f_new, g_new = x.copy(), f.copy(), g.copy()
        pending = active.copy()
        for _ in range(30):
            idx = np.flatnonzero(pending)
            if not len(idx):
                break
            trial = x[idx] + step[idx, None] * d[idx]
            ft, gt = value_grad(trial, idx)
            ok = np.isfinite(ft) & (ft <= f[idx] + 1e-4 * step[idx] * slope[idx])
            x_new[idx[ok]], f_new[idx[ok]], g_new[idx[ok]] = trial[ok], ft[ok], gt[ok]
            pending[idx[ok]] = False
            step[idx[~ok]] *= 0.5
        moved = active & ~pending
        s_vec, y_vec = x_new - x, g_new - g
        curvature = (s_vec * y_vec).sum(axis=1)
        rho = np.where(moved & (curvature > 1e-16), 1.0 / np.where(curvature > 1e-16, curvature, 1.0), 0.0)
        history.append((np.where(rho[:, None] > 0, s_vec, 0.0), np.where(rho[:, None] > 0, y_vec, 0.0), rho))
        history = history[-memory:]
        converged = moved & (np.abs(f - f_new) <= tol * np.maximum(np.abs(f), 1e-12))
        x, f, g = x_new, f_new, g_new
        active &= ~(pending | converged)
    return x, f


class OlmixLogLinear(MixingLaw):
    name = "olmix"
    description = "Olmix's default fit of L_i = exp(log c_i) + exp(t_i . r): L-BFGS on Huber (delta 0.02), 300 starts; reference for dml"
    defaults = {
        "delta": 0.02,
        "restarts": 300,
        "steps": 100,
        "n_log_c": 10,
        "seed": 0,
        "domain_map": None,
        "large_swarm": LARGE_SWARM,  # distinct mixtures from which the starts run through the LM engine
    }
    hyper_schema = {"n_log_c": Hyper(int, 1)}
    seeded = True

    def n_parameters(self, n_domains: int) -> int:
        return 1 + n_domains

    def _starts(self, M: int, own: list[int] | None, rng: np.random.Generator) -> np.ndarray:
        n_c = int(self.hyper["n_log_c"])
        n_t = max(1, int(self.hyper["restarts"]) // n_c)
        t = rng.normal(0.0, 1.0, size=(n_t, M))
        if own:
            t[:, own] = -np.abs(t[:, own])
        log_c = np.linspace(-2.0, 1.5, n_c)
        return np.concatenate([np.repeat(log_c, n_t)[:, None], np.tile(t, (n_c, 1))], axis=1)

    def _fit(self, X: np.ndarray, Y: np.ndarray, context: FitContext) -> dict[str, Any]:
        targets = list(context.targets or [])
        domains = list(context.domains or [])
        mapping = (
            resolve_domain_map(targets, domains, self.hyper["domain_map"]) if targets and domains else {}
        )
        rng = np.random.default_rng(self.hyper["seed"])
        delta = float(self.hyper["delta"])
        n, M = X.shape
        T = Y.shape[1]
        starts = [self._starts(M, mapping.get(targets[t]) if targets else None, rng) for t in range(T)]
        if is_large_swarm(X, self.hyper["large_swarm"]):
            return self._fit_screened(X, Y, np.stack(starts))
        S = len(starts[0])
        y = np.repeat(Y.T, S, axis=0)  # (T * S, n): every start is its own problem

        def value_grad(p: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            with np.errstate(over="ignore", invalid="ignore"):
                c = np.exp(p[:, :1])
                e = np.exp(np.clip(p[:, 1:] @ X.T, -50, 50))
                r = c + e - y[idx]
                g = np.clip(r, -delta, delta) / n  # d mean-Huber / d residual
                grad = np.concatenate([(g * c).sum(axis=1, keepdims=True), (g * e) @ X], axis=1)
                value = huber(r, delta).mean(axis=1)
            bad = ~np.isfinite(value)
            value[bad], grad[bad] = np.inf, 0.0
            return value, grad

        theta, cost = batched_lbfgs(value_grad, np.concatenate(starts), int(self.hyper["steps"]) * 20)
        best = (
            np.nanargmin(np.where(np.isfinite(cost), cost, np.nan).reshape(T, S), axis=1) + np.arange(T) * S
        )
        return {
            "log_c": theta[best, 0].tolist(),
            "theta": theta[best, 1:].tolist(),
            "huber_mean": cost[best].tolist(),
        }

    def _fit_screened(self, X: np.ndarray, Y: np.ndarray, starts: np.ndarray) -> dict[str, Any]:
        """Large swarms (`is_large_swarm`): the same starts and Huber objective, solved with mixlaw's batched
        Levenberg-Marquardt engine instead of L-BFGS (whose 2000-iteration budget takes minutes on 500 runs x 20
        domains). All starts of all targets run OLMIX_SCREEN_ITER LM iterations in one batch; the OLMIX_KEEP best
        of each target then run to convergence, and the best is kept. LM minimizes the summed Huber loss, which
        has the same minimizer as Olmix's mean."""
        T, S, P = starts.shape
        n = len(X)
        delta = float(self.hyper["delta"])
        model = exp_model(X)
        index = np.repeat(np.arange(T), S)
        theta, cost = levenberg_marquardt(
            model, starts.reshape(T * S, P), Y.T[index], index, delta=delta, max_iter=OLMIX_SCREEN_ITER
        )
        cost = np.where(np.isfinite(cost), cost, np.inf).reshape(T, S)
        top = np.argsort(cost, axis=1, kind="stable")[:, :OLMIX_KEEP]
        kept = np.take_along_axis(theta.reshape(T, S, P), top[:, :, None], axis=1)
        result = fit_multistart(model, Y.T, kept, delta=delta, polish=0)
        return {
            "log_c": result.theta[:, 0].tolist(),
            "theta": result.theta[:, 1:].tolist(),
            "huber_mean": (result.cost / n).tolist(),
            "optimizer": "lm-screened",
            "starts_at_best": result.n_success.tolist(),
        }

    def _predict(self, X: np.ndarray) -> np.ndarray:
        return np.exp(np.array(self.params_["log_c"]))[None] + np.exp(X @ np.array(self.params_["theta"]).T)


# ------------------------------------------------------------------------------------------ Gaussian process


def _sq_dist(A: np.ndarray, B: np.ndarray, inv_l2: np.ndarray) -> np.ndarray:
    a, b = A * np.sqrt(inv_l2), B * np.sqrt(inv_l2)
    return np.maximum((a**2).sum(1)[:, None] + (b**2).sum(1)[None] - 2 * a @ b.T, 0.0)


class GaussianProcess(MixingLaw):
    name = "gp"
    description = "Gaussian-process regression on the simplex (ARD RBF + noise, marginal likelihood); non-parametric reference"
    defaults = {"restarts": 2, "seed": 0, "max_iter": 80, "hp_rows": 200}
    hyper_schema = {"hp_rows": Hyper(int, 1)}
    seeded = True
    nonparametric = True
    auto_candidate = 7
    auto_min_mixtures = 100

    def n_parameters(self, n_domains: int) -> int:
        return 3

    def _fit(self, X: np.ndarray, Y: np.ndarray, context: FitContext) -> dict[str, Any]:
        """Targets are standardized; log length-scales (M), log signal and log noise variance are shared by all
        targets and maximize the summed log marginal likelihood (exact gradient, L-BFGS-B) on at most `hp_rows`
        rows; the predictive weights then use every row."""
        from scipy.linalg import cho_factor, cho_solve  # lazy: keeps scipy off the `mixlaw fit` import path
        from scipy.optimize import minimize

        n_all, M = X.shape
        mean, scale = Y.mean(axis=0), Y.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        Z_all = (Y - mean) / scale
        rng = np.random.default_rng(self.hyper["seed"])
        # Hyper-parameters from a random subset of at most `hp_rows` rows (O(n^3) per step); weights from all.
        rows = np.sort(rng.permutation(n_all)[: int(self.hyper["hp_rows"])])
        Xs, Z = X[rows], Z_all[rows]
        n, T = len(Xs), Z.shape[1]
        D = (Xs[:, None, :] - Xs[None, :, :]) ** 2  # (n, n, M)

        def nll(theta: np.ndarray) -> tuple[float, np.ndarray]:
            inv_l2 = np.exp(-2 * theta[:M])
            s2, noise = np.exp(theta[M]), np.exp(theta[M + 1])
            Kse = s2 * np.exp(-0.5 * D @ inv_l2)
            K = Kse + (noise + 1e-8) * np.eye(n)
            try:
                factor = cho_factor(K, lower=True)
            except np.linalg.LinAlgError:
                return 1e30, np.zeros_like(theta)
            alpha = cho_solve(factor, Z)
            value = 0.5 * (Z * alpha).sum() + T * np.log(np.diag(factor[0])).sum()
            W = T * cho_solve(factor, np.eye(n)) - alpha @ alpha.T
            WK = W * Kse
            grad_l = 0.5 * np.einsum("ij,ijm->m", WK, D) * inv_l2
            grad = np.concatenate([grad_l, [0.5 * WK.sum(), 0.5 * noise * np.trace(W)]])
            return float(value), grad

        spread = np.sqrt(np.maximum(X.var(axis=0), 1e-4))
        bounds = [(np.log(1e-3), np.log(1e3))] * M + [
            (np.log(1e-3), np.log(1e2)),
            (np.log(1e-6), np.log(1.0)),
        ]
        best = None
        for k in range(int(self.hyper["restarts"])):
            start = np.concatenate(
                [
                    np.log(spread * (2.0 if k == 0 else rng.uniform(0.5, 5.0))),
                    [0.0],
                    [np.log(0.01 if k == 0 else rng.uniform(1e-3, 0.2))],
                ]
            )
            result = minimize(
                nll,
                start,
                jac=True,
                method="L-BFGS-B",
                bounds=bounds,
                options={"maxiter": int(self.hyper["max_iter"])},
            )
            if best is None or result.fun < best.fun:
                best = result
        theta = best.x
        inv_l2 = np.exp(-2 * theta[:M])
        K = np.exp(theta[M]) * np.exp(-0.5 * _sq_dist(X, X, inv_l2)) + (np.exp(theta[M + 1]) + 1e-8) * np.eye(
            n_all
        )
        alpha = cho_solve(cho_factor(K, lower=True), Z_all)
        return {
            "length_scale": np.exp(theta[:M]).tolist(),
            "signal_var": float(np.exp(theta[M])),
            "noise_var": float(np.exp(theta[M + 1])),
            "mean": mean.tolist(),
            "scale": scale.tolist(),
            "X": X.tolist(),
            "alpha": alpha.tolist(),
            "neg_log_marginal": float(best.fun),
        }

    def _predict(self, X: np.ndarray) -> np.ndarray:
        p = self.params_
        inv_l2 = np.array(p["length_scale"]) ** -2.0
        k = p["signal_var"] * np.exp(-0.5 * _sq_dist(X, np.array(p["X"]), inv_l2))
        return (k @ np.array(p["alpha"])) * np.array(p["scale"])[None] + np.array(p["mean"])[None]


PEER_LAWS = (RegMixLGBM, RegMixLinear, LogLinear, OlmixLogLinear, BiMix, GaussianProcess)
