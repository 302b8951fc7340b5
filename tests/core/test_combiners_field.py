"""The field's two-task rules (issue 20) against independent float64 computations on vectors.

upgrad, dualproj, config, fairgrad, stch, blur, gru. Each reference below works on explicit
gradient vectors in R^k (k = 3..8), not on the Gram matrix: UPGrad/DualProj solve their published
quadratic program min ‖Jᵀv‖² s.t. v ≥ u with scipy's bounded least squares, ConFIG takes the
pseudo-inverse of the unit-gradient matrix, FairGrad maximises its α-fair utility over the
direction's angle (a root of its stationarity condition, in 40 digits), STCH differentiates
μ·logsumexp with torch, BLUR and GRU repeat their reference code's vector operations. FIELD_REFERENCES has the signature of test_combiners.REFERENCES
(factory(**params) → ref(g_R, g_F, L_R, L_F) → d) so that suite can take them over.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Callable

import mpmath
import numpy as np
import pytest
import torch
from scipy.optimize import lsq_linear

from pareto._registry import RegistryError
from pareto.core.combiners import COMBINERS, build_combiner
from pareto.core.gram import Losses

FIELD = ("upgrad", "dualproj", "config", "fairgrad", "stch", "blur", "gru")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "combiners.md"


from _vectors import cos, gram_of, norm, unit  # noqa: E402,F401  (shared with the other combiner tests)


def direction(name: str, params: dict, g_r, g_f, l_r=1.0, l_f=-1.0, comb=None) -> tuple[np.ndarray, tuple]:
    comb = comb or build_combiner(name, **params)
    w = comb.weights(gram_of(g_r, g_f), Losses(l_r, l_f))
    return w[0] * g_r - w[1] * g_f, w


# ─────────────────── reference formulas, on vectors ───────────────────
# Tasks t1 = g_R, t2 = −g_F (g_F is maximised).


def _dual_cone_qp(g_r, g_f, u) -> np.ndarray:
    """Jᵀv for v = argmin ‖Jᵀv‖² s.t. v ≥ u (Quinton & Rey Prop. 1), J's rows t1, t2."""
    A = np.stack([g_r, -g_f]).T  # k × 2
    if not np.any(A):
        return np.zeros_like(g_r)
    v = lsq_linear(A, np.zeros(A.shape[0]), bounds=(np.asarray(u, float), np.inf), method="bvls", tol=1e-15).x
    return A @ v


def upgrad_ref(**_):
    """(1/m)·Σ_i π_J(t_i): the preference vector e_i/2 for each task, projections summed."""
    return lambda g_r, g_f, lr, lf: _dual_cone_qp(g_r, g_f, (0.5, 0.0)) + _dual_cone_qp(g_r, g_f, (0.0, 0.5))


def dualproj_ref(**_):
    return lambda g_r, g_f, lr, lf: _dual_cone_qp(g_r, g_f, (0.5, 0.5))


def config_ref(**_):
    """g_u = U[pinv([u1, u2]ᵀ)·1], d = (Σ t_i·g_u)·g_u; a zero task's row is 0 (nan_to_num).
    Rank 2: pinv(U)·1 = Uᵀ(UUᵀ)⁻¹·1 in 50-digit arithmetic, the unit vectors included (for nearly
    equal unit tasks the result is ill-conditioned in their rounding); otherwise numpy's pinv."""

    def ref(g_r, g_f, lr, lf):
        tasks = [g_r, -g_f]
        U = np.stack([unit(t) for t in tasks])
        sv = np.linalg.svd(U, compute_uv=False)
        if len(sv) == 2 and sv[1] > 1e-12 * sv[0]:
            with mpmath.workdps(50):
                T = mpmath.matrix([[mpmath.mpf(float(x)) for x in t] for t in tasks])
                Um = mpmath.matrix(2, T.cols)
                for i in range(2):
                    n = mpmath.sqrt(sum(T[i, j] ** 2 for j in range(T.cols)))
                    for j in range(T.cols):
                        Um[i, j] = T[i, j] / n
                x = Um.T * mpmath.lu_solve(Um * Um.T, mpmath.matrix([1, 1]))
                g_u = x / mpmath.norm(x)
                d = (sum((T * g_u)[i] for i in range(2))) * g_u
                return np.array([float(v) for v in d])
        x = np.linalg.pinv(U) @ np.ones(2)
        # ‖x‖ ≥ 1/√2 whenever some row is nonzero and not cancelled by the other; the only smaller
        # solution is x = 0 (exactly opposite rows), which pinv returns up to rounding.
        g_u = unit(x) if norm(x) > 1e-8 else np.zeros_like(x)
        return sum(t @ g_u for t in tasks) * g_u

    return ref


def fairgrad_ref(alpha=2.0, **_):
    """The α-fair problem max Σ_i (t_i·d)^{1−α}/(1 − α) over unit d, solved for d's angle φ in the
    plane of the tasks (Gram–Schmidt coordinates): its stationarity condition
    Σ_i s_i^{−α}·(t_i·d⊥) = 0, s_i = t_i·d, by a bracketing root finder on the arc where every
    s_i > 0; then the scale that makes d = Σ_i w_i t_i with t_i·d = w_i^{−1/α} (FairGrad's
    GᵀGw = w^{−1/α}). In 40-digit arithmetic: the root can sit within 1e-9 rad of the arc's end."""

    def ref(g_r, g_f, lr, lf):
        tasks = [t for t in (g_r, -g_f) if norm(t) > 0]
        if not tasks:
            return np.zeros_like(g_r)
        if len(tasks) == 2 and 1 + cos(*tasks) <= 1e-12:  # exactly conflicting: no d has all s_i > 0
            return np.zeros_like(g_r)
        with mpmath.workdps(40):
            T = [mpmath.matrix([mpmath.mpf(float(x)) for x in t]) for t in tasks]
            e1 = T[0] / mpmath.norm(T[0])
            a = [(mpmath.norm(T[0]), mpmath.mpf(0))]
            e2 = e1 * 0
            if len(T) == 2:
                p = (T[1].T * e1)[0]
                r = T[1] - p * e1
                a.append((p, mpmath.norm(r)))
                e2 = r / a[1][1] if a[1][1] > 0 else e2
            th = [mpmath.atan2(y, x) for x, y in a]  # θ1 = 0, θ2 ∈ [0, π)
            lo, hi = max(th) - mpmath.pi / 2, min(th) + mpmath.pi / 2

            def s_of(phi):
                return [x * mpmath.cos(phi) + y * mpmath.sin(phi) for x, y in a]

            def stationarity(phi):  # divided by Σ_i s_i^{−α}‖t_i‖, so it lies in [−1, 1]
                p = [si**-alpha for si in s_of(phi)]
                num = sum(pi * (y * mpmath.cos(phi) - x * mpmath.sin(phi)) for pi, (x, y) in zip(p, a))
                return num / sum(pi * mpmath.hypot(x, y) for pi, (x, y) in zip(p, a))

            if len(a) == 1 or th[0] == th[1]:
                phi = th[0]
            else:
                eps = (hi - lo) * mpmath.mpf(10) ** -35
                phi = mpmath.findroot(
                    stationarity, (lo + eps, hi - eps), solver="illinois", tol=mpmath.mpf(10) ** -70, verify=False
                )
            s = s_of(phi)
            v = sum((si**-alpha * t for si, t in zip(s, T)), T[0] * 0)
            lam = mpmath.norm(v) ** (mpmath.mpf(1) / (1 + alpha))
            d = lam * v / mpmath.norm(v)
            return np.array([float(x) for x in d])

    return ref


def stch_ref(mu=1.0, **_):
    """∇ of μ·logsumexp((ℓ − z)/μ) w.r.t. ℓ = (L_R, −L_F) by autograd, z the running minimum."""
    state: dict = {"z": None}

    def ref(g_r, g_f, l_r, l_f):
        ell = torch.tensor([l_r, -l_f], dtype=torch.float64, requires_grad=True)
        z = ell.detach().clone() if state["z"] is None else torch.minimum(state["z"], ell.detach())
        state["z"] = z
        (p,) = torch.autograd.grad(mu * torch.logsumexp((ell - z) / mu, 0), ell)
        return float(p[0]) * g_r + float(p[1]) * (-g_f)  # ∇ℓ_R = g_R, ∇ℓ_F = −g_F

    return ref


def blur_ref(gamma=1.0, **_):
    """BLO_forget_lower: grad = g_r + ξ·g_f, ξ = γ − ⟨g_r, g_f⟩/‖g_f‖², g_f = ∇(−L_F) = −g_F."""

    def ref(g_r, g_f, lr, lf):
        gr, gf = g_r, -g_f
        lower = gf @ gf
        xi = gamma - (gr @ gf) / lower if lower > 0 else gamma
        return gr + xi * gf

    return ref


def gru_ref(**_):
    """open-unlearning GRU with γ_gru = 1: g_u = ∇(−L_F) rectified against g_R on conflict."""

    def ref(g_r, g_f, lr, lf):
        g_u = -g_f
        dot = g_u @ g_r
        if dot < 0:
            g_u = g_u - dot / (g_r @ g_r) * g_r
        return g_u

    return ref


FIELD_REFERENCES: dict[str, Callable] = {
    "upgrad": upgrad_ref,
    "dualproj": dualproj_ref,
    "config": config_ref,
    "fairgrad": fairgrad_ref,
    "stch": stch_ref,
    "blur": blur_ref,
    "gru": gru_ref,
}
FIELD_PARAMS: dict[str, list[dict]] = {
    "fairgrad": [{"alpha": 0.5}, {"alpha": 1.0}, {"alpha": 5.0}],
    "stch": [{"mu": 0.1}, {"mu": 10.0}],
    "blur": [{"gamma": 0.0}, {"gamma": 3.0}],
}
RTOL: dict[str, float] = {}


def field_cases() -> list[tuple[str, dict]]:
    return [(n, {}) for n in FIELD] + [(n, p) for n in FIELD for p in FIELD_PARAMS.get(n, [])]


def case_id(case) -> str:
    return case[0] + "".join(f"-{k}={v}" for k, v in case[1].items())


# ────────────────────────────── inputs ──────────────────────────────


KINDS = ("generic", "zero_gR", "zero_gF", "parallel", "antiparallel", "near_parallel", "generic", "generic")


def random_steps(n: int = 1200, seed: int = 20) -> list[tuple[str, np.ndarray, np.ndarray, float, float]]:
    """Seeded (kind, g_R, g_F, L_R, L_F) in R^k, k = 3..8, norms 1e-3..1e3; one step in eight
    has a zero gradient, parallel (conflicting), antiparallel or near-parallel gradients."""
    rng = np.random.default_rng(seed)
    out = []
    l_r, l_f = 2.0, -2.0
    for i in range(n):
        k = int(rng.integers(3, 9))
        g_r = rng.standard_normal(k) * 10 ** rng.uniform(-3, 3)
        g_f = rng.standard_normal(k) * 10 ** rng.uniform(-3, 3)
        a = 10 ** rng.uniform(-2, 2)
        kind = KINDS[i % 8]
        if kind == "zero_gR":
            g_r = np.zeros(k)
        elif kind == "zero_gF":
            g_f = np.zeros(k)
            if i % 48 == 2:
                g_r = np.zeros(k)  # both zero
        elif kind == "parallel":  # g_F = a·g_R: the tasks t1, t2 exactly conflict
            g_f = a * g_r
        elif kind == "antiparallel":  # g_F = −a·g_R: the tasks agree
            g_f = -a * g_r
        elif kind == "near_parallel":
            g_f = a * g_r + 1e-3 * a * norm(g_r) * unit(rng.standard_normal(k))
        l_r = max(0.01, l_r + rng.normal(0, 0.3))  # a random walk, so STCH's ideal point moves
        l_f = l_f + rng.normal(0, 0.5)
        out.append((kind, g_r, g_f, float(l_r), float(l_f)))
    return out


STEPS = random_steps()


def test_inputs_cover_the_hard_cases():
    kinds = [s[0] for s in STEPS]
    assert len(STEPS) >= 1000
    for kind in ("zero_gR", "zero_gF", "parallel", "antiparallel", "near_parallel"):
        assert kinds.count(kind) >= 100
    assert sum(1 for _, g_r, g_f, *_ in STEPS if not np.any(g_r) and not np.any(g_f)) >= 20


# ───────────────────────── weights = reference ─────────────────────────


@pytest.mark.parametrize("case", field_cases(), ids=case_id)
def test_weights_match_reference_on_random_grams(case):
    name, params = case
    comb = build_combiner(name, seed=0, **params)
    ref = FIELD_REFERENCES[name](**params)
    for i, (kind, g_r, g_f, l_r, l_f) in enumerate(STEPS):
        w = comb.weights(gram_of(g_r, g_f), Losses(l_r, l_f))
        assert all(type(x) is float and math.isfinite(x) for x in w), f"{name} step {i} ({kind}): {w!r}"
        d = w[0] * g_r - w[1] * g_f
        d_ref = ref(g_r, g_f, l_r, l_f)
        scale = abs(w[0]) * norm(g_r) + abs(w[1]) * norm(g_f) + norm(d_ref)
        err = norm(d - d_ref)
        assert err <= RTOL.get(name, 1e-9) * scale + 1e-300, (
            f"{case_id(case)} step {i} ({kind}): |d − d_ref| = {err:.3e}, scale {scale:.3e}\n"
            f"w={w}\nd={d}\nd_ref={d_ref}"
        )


@pytest.mark.parametrize("name", FIELD)
@pytest.mark.parametrize(
    "g_r, g_f",
    [
        (1e-100 * np.array([1.0, 2.0, -1.0]), 1e-100 * np.array([0.5, -1.0, 3.0])),
        (1e100 * np.array([1.0, 2.0, -1.0]), 1e100 * np.array([0.5, -1.0, 3.0])),
        (1e-50 * np.array([1.0, 2.0, -1.0]), 1e50 * np.array([0.5, 1.0, 3.0])),
        (1e50 * np.array([1.0, 2.0, -1.0]), 1e-50 * np.array([0.5, 1.0, 3.0])),
        (np.array([2.0]), np.array([3.0])),
        (np.array([2.0]), np.array([-3.0])),
    ],
    ids=["tiny", "huge", "mixed", "mixed_rev", "dim1_same", "dim1_opposite"],
)
def test_extreme_scales_give_finite_weights(name, g_r, g_f):
    d, w = direction(name, {}, g_r, g_f)
    assert all(math.isfinite(x) for x in w) and np.all(np.isfinite(d))


# ───────────────────────── stated guarantees ─────────────────────────

CONFLICT_FREE = [("upgrad", {}), ("dualproj", {}), ("config", {}), ("gru", {})] + [
    ("fairgrad", {"alpha": a}) for a in (0.5, 1.0, 2.0, 5.0)
]


@pytest.mark.parametrize("case", CONFLICT_FREE, ids=case_id)
def test_conflict_free_rules_satisfy_eq5(case):
    """g_R·d ≥ 0 ≥ g_F·d (paper Eq. 5, Lemma 4 for NGDiff) on every input, zero/parallel included."""
    name, params = case
    for i, (kind, g_r, g_f, l_r, l_f) in enumerate(STEPS):
        d, w = direction(name, params, g_r, g_f, l_r, l_f)
        tol = 1e-12 * (abs(w[0]) * norm(g_r) + abs(w[1]) * norm(g_f)) * (norm(g_r) + norm(g_f))
        assert g_r @ d >= -tol, f"{case_id(case)} step {i} ({kind}): g_R·d = {g_r @ d}"
        assert g_f @ d <= tol, f"{case_id(case)} step {i} ({kind}): g_F·d = {g_f @ d}"


def test_blur_keeps_the_forget_side_but_can_harm_retain():
    """BLUR: g_F·d = −γ‖g_F‖² ≤ 0 always; g_R·d < 0 for parallel gradients (the counterexample)."""
    for gamma in (0.0, 1.0, 3.0):
        for _, g_r, g_f, *_ in STEPS:
            d, _ = direction("blur", {"gamma": gamma}, g_r, g_f)
            assert g_f @ d == pytest.approx(-gamma * (g_f @ g_f), rel=1e-9, abs=1e-12 * norm(g_r) * norm(g_f))
    g_r = np.array([1.0, 2.0, 0.0])
    d, w = direction("blur", {"gamma": 1.0}, g_r, g_r.copy())
    assert w == (1.0, 2.0) and g_r @ d == pytest.approx(-(g_r @ g_r))


def test_stch_can_harm_retain():
    """STCH ignores the gradients: a forget loss far above its ideal gives d ≈ −g_F, g_R·d < 0."""
    comb = build_combiner("stch", mu=1.0)
    g_r, g_f = np.array([1.0, 0.0, 0.0]), np.array([1.0, 1.0, 0.0])  # g_R·g_F > 0: conflict
    assert comb.weights(gram_of(g_r, g_f), Losses(1.0, -1.0)) == (0.5, 0.5)  # first step: z = ℓ
    d, w = direction("stch", {}, g_r, g_f, 1.0, -11.0, comb=comb)  # ℓ_F = 11, its ideal 1
    assert w[1] > 0.9999 and g_r @ d < 0


def test_gru_removes_exactly_the_retain_harming_part():
    for kind, g_r, g_f, *_ in STEPS:
        d, w = direction("gru", {}, g_r, g_f)
        assert w[1] == 1.0
        if g_r @ g_f > 0 and norm(g_r) > 0:
            assert abs(g_r @ d) <= 1e-12 * norm(g_r) * norm(g_f) * (1 + abs(w[0]))
        else:
            assert w[0] == 0.0


def test_fairgrad_solves_its_fixed_point_and_is_nash_at_alpha_1():
    for alpha in (0.5, 1.0, 2.0, 5.0):
        for kind, g_r, g_f, *_ in STEPS:
            if kind != "generic":
                continue
            d, (w1, w2) = direction("fairgrad", {"alpha": alpha}, g_r, g_f)
            for w, t in ((w1, g_r), (w2, -g_f)):
                assert t @ d == pytest.approx(w ** (-1.0 / alpha), rel=1e-10)
            if alpha == 1.0:
                nash = build_combiner("nash").weights(gram_of(g_r, g_f), Losses(1.0, -1.0))
                assert (w1, w2) == pytest.approx(nash, rel=1e-12)


def test_upgrad_is_half_pcgrad():
    for _, g_r, g_f, *_ in STEPS:
        up = build_combiner("upgrad").weights(gram_of(g_r, g_f), Losses(1.0, -1.0))
        pc = build_combiner("pcgrad").weights(gram_of(g_r, g_f), Losses(1.0, -1.0))
        assert up == pytest.approx((0.5 * pc[0], 0.5 * pc[1]), rel=1e-15)


def test_stch_ideal_point_state():
    comb = build_combiner("stch", mu=0.5)
    comb.weights(gram_of(np.ones(3), np.ones(3)), Losses(2.0, -3.0))
    w = comb.weights(gram_of(np.ones(3), np.ones(3)), Losses(2.5, -2.0))  # ℓ_R up 0.5, ℓ_F down 1
    assert comb.ideal == (2.0, 2.0)
    assert w == pytest.approx((1 / (1 + math.exp(-1.0)), 1 / (1 + math.exp(1.0))))
    comb.reset(0)
    assert comb.ideal is None
    assert comb.weights(gram_of(np.ones(3), np.ones(3)), Losses(9.0, 9.0)) == (0.5, 0.5)


# ───────────────────────── NGDiff's direction ─────────────────────────


def _generic_pairs():
    for kind, g_r, g_f, *_ in STEPS:
        if kind in ("generic", "near_parallel") and norm(g_r) > 0 and norm(g_f) > 0:
            yield g_r, g_f


@pytest.mark.parametrize("case", [("config", {}), ("fairgrad", {"alpha": 1.0})], ids=case_id)
def test_rules_parallel_to_ngdiff(case):
    for g_r, g_f in _generic_pairs():
        d, _ = direction(*case, g_r, g_f)
        assert cos(d, unit(g_r) - unit(g_f)) >= 1 - 1e-9


@pytest.mark.parametrize(
    "case",
    [("upgrad", {}), ("dualproj", {}), ("fairgrad", {"alpha": 2.0}), ("fairgrad", {"alpha": 0.5})],
    ids=case_id,
)
def test_rules_parallel_to_ngdiff_only_at_equal_norms(case):
    """upgrad, dualproj and FairGrad(α ≠ 1) point along u_R − u_F when ‖g_R‖ = ‖g_F‖, not otherwise."""
    g_r, g_f = np.array([1.0, 0.0, 0.0]), np.array([4.0, 3.0, 0.0])  # conflicting, norms 1 and 5
    d, _ = direction(*case, g_r, g_f)
    assert cos(d, unit(g_r) - unit(g_f)) < 1 - 1e-3
    for g_r, g_f in _generic_pairs():
        g_f = g_f * (norm(g_r) / norm(g_f))
        d, _ = direction(*case, g_r, g_f)
        assert cos(d, unit(g_r) - unit(g_f)) >= 1 - 1e-9


@pytest.mark.parametrize("name", ["gru", "blur", "stch"])
def test_rules_not_parallel_to_ngdiff(name):
    comb = build_combiner(name)
    comb.weights(gram_of(np.ones(3), np.ones(3)), Losses(1.0, -1.0))
    g_r, g_f = np.array([1.0, 0.0, 0.0]), np.array([1.0, 1.0, 0.0])  # equal norms would not matter
    d, _ = direction(name, {}, g_r, g_f, 1.0, -1.0, comb=comb)
    assert cos(d, unit(g_r) - unit(g_f)) < 1 - 1e-3


# ─────────────────────────── parameters, docs ───────────────────────────


@pytest.mark.parametrize(
    "name, params, fragment",
    [
        ("fairgrad", {"alpha": 0.0}, "alpha must be a finite number > 0"),
        ("fairgrad", {"alpha": float("inf")}, "alpha"),
        ("stch", {"mu": -1.0}, "mu must be a finite number > 0"),
        ("blur", {"gamma": -0.5}, "gamma must be a finite number ≥ 0"),
    ],
)
def test_bad_parameter_values_are_refused(name, params, fragment):
    with pytest.raises(RegistryError) as exc:
        build_combiner(name, **params)
    assert fragment in str(exc.value)


def test_field_rules_are_registered_and_gradient_rules_need_no_positive_loss():
    for name in FIELD:
        assert name in COMBINERS.names()
        assert COMBINERS.get(name).needs_positive_forget_loss is False


def test_every_registered_combiner_has_a_docs_row():
    rows = set(re.findall(r"^\| `([a-z0-9_]+)` \|", DOCS.read_text(), flags=re.M))
    missing = sorted(set(COMBINERS.names()) - rows)
    assert not missing, f"docs/combiners.md has no table row for: {', '.join(missing)}"
