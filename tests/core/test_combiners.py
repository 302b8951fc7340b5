"""Every registered combiner against an independent float64 vector formula.

A combiner sees only the Gram matrix (‖g_R‖², g_R·g_F, ‖g_F‖²) and the losses. Here each one's
direction d = w_R·g_R − w_F·g_F is compared with a reference written from the definitions on
the vectors themselves (explicit projections, brute-force minimisation, an SVD, torch's own
Adam and autograd for FAMO, 60-digit arithmetic for IMTL-G's literal formula). REFERENCES must
name every registered combiner: a new combiner fails `test_every_combiner_has_a_reference`
until its reference formula is added here.
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import Callable

import mpmath
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pareto._registry import RegistryError
from pareto.core.combiners import COMBINERS, build_combiner
from pareto.core.gram import Gram, Losses

EPS32 = float(np.finfo(np.float32).eps)
GA_MESSAGE = (
    "famo weights tasks by log-loss and needs the forget task as a positive loss to minimise; "
    "the 'ga' objective's forget loss -L_F is negative. Use a forget objective with a positive loss: "
    "ceu, idkdpo, idknll, npo, rmu, simnpo, undial."
)

# ───────────────────────────── helpers ─────────────────────────────


from _vectors import cos, gram_of, norm, unit  # noqa: E402,F401  (shared with the other combiner tests)


def static_ref(c: float) -> Callable:
    return lambda g_r, g_f, lr, lf: c * g_r - (1.0 - c) * g_f


# ─────────────────── reference formulas, on vectors ───────────────────
# Each factory takes the combiner's parameters (and the seed) and returns a possibly stateful
# function (g_R, g_F, L_R, L_F) -> reference direction d. Tasks: t1 = g_R, t2 = −g_F.


def ngdiff_ref(**_):
    return lambda g_r, g_f, lr, lf: unit(g_r) - unit(g_f)


def lossnorm_ref(**_):
    def ref(g_r, g_f, lr, lf):
        a = 1.0 / abs(lr) if lr != 0 else 0.0
        b = 1.0 / abs(lf) if lf != 0 else 0.0
        return a * g_r - b * g_f

    return ref


def rlw_ref(seed=0, **_):
    rng = np.random.default_rng(seed)

    def ref(g_r, g_f, lr, lf):
        lam = rng.standard_normal(2)
        c = np.exp(lam[0]) / np.exp(lam).sum()  # softmax form, as LibMTL writes it
        return c * g_r - (1.0 - c) * g_f

    return ref


def pcgrad_ref(variant="symmetric", **_):
    def symmetric(g_r, g_f, lr, lf):
        # Yu et al. Alg. 1 / LibMTL loop: project each task against the other's original gradient.
        grads = [g_r, -g_f]
        pc = [g.copy() for g in grads]
        for i in range(2):
            j = 1 - i
            dot = pc[i] @ grads[j]
            if dot < 0:
                pc[i] = pc[i] - dot / (grads[j] @ grads[j]) * grads[j]
        return pc[0] + pc[1]

    def paper(g_r, g_f, lr, lf):
        t1, t2 = g_r, -g_f
        if t1 @ t2 >= 0:
            return 0.5 * (t1 + t2)
        k = 1.0 - (t2 @ t1) / (t1 @ t1)  # coefficient of t1 after projecting t2 off t1
        t2_proj = t2 - (t2 @ t1) / (t1 @ t1) * t1
        return (t1 + t2_proj) / (k + 1.0)  # normalised so the two coefficients sum to 1

    return symmetric if variant == "symmetric" else paper


def imtlg_ref(**_):
    """The paper's literal formula c = g_F·(u_F − u_R) / (g_F − g_R)·(u_F − u_R), in 200 digits
    (enough for 1 − c when ‖g_R‖/‖g_F‖ is as small as 1e-100)."""

    def ref(g_r, g_f, lr, lf):
        with mpmath.workdps(200):
            r = [mpmath.mpf(float(x)) for x in g_r]
            f = [mpmath.mpf(float(x)) for x in g_f]
            nr = mpmath.sqrt(mpmath.fsum(x * x for x in r))
            nf = mpmath.sqrt(mpmath.fsum(x * x for x in f))
            ur = [x / nr for x in r] if nr > 0 else [mpmath.mpf(0)] * len(r)
            uf = [x / nf for x in f] if nf > 0 else [mpmath.mpf(0)] * len(f)
            du = [a - b for a, b in zip(uf, ur)]
            num = mpmath.fsum(a * b for a, b in zip(f, du))
            den = mpmath.fsum((a - b) * u for a, b, u in zip(f, r, du))
            if nr + nf == 0:
                c = mpmath.mpf("0.5")
            elif abs(den) <= mpmath.mpf(10) ** -120 * (nr + nf):
                c = nf / (nr + nf)  # 0/0 at exactly parallel gradients: the formula's limit
            else:
                c = num / den
            c, one_minus_c = float(c), float(1 - c)  # 1 − c in 200 digits: c may round to 1
        return c * g_r - one_minus_c * g_f

    return ref


def mgda_ref(normalization="none", **_):
    def ref(g_r, g_f, lr, lf):
        n = {
            "none": (1.0, 1.0),
            "l2": (norm(g_r), norm(g_f)),
            "loss": (abs(lr), abs(lf)),
            "loss+": (abs(lr) * norm(g_r), abs(lf) * norm(g_f)),
        }[normalization]
        s = [1.0 / x if x > 0 else 0.0 for x in n]
        t1, t2 = s[0] * g_r, -s[1] * g_f
        v11, v12, v22 = t1 @ t1, t1 @ t2, t2 @ t2
        # Sener & Koltun's _min_norm_element_from2 (LibMTL MGDA), then pareto's clip.
        if v12 >= v11:
            gamma = 0.999
        elif v12 >= v22:
            gamma = 0.001
        else:
            gamma = min(max((v22 - v12) / (v11 + v22 - 2 * v12), 0.001), 0.999)
        return gamma * t1 + (1 - gamma) * t2

    return ref


def cagrad_ref(alpha=0.5, rescale=True, **_):
    """Brute force over a grid of w, then bisection on the sign of F'(w), all on vectors.

    Opposite tasks t2 = −k·t1 (1 + cos ≤ 1e-12, as pareto judges it) check the primal first:
    on the line d = x·u1, min(t1·d, t2·d) = min(‖t1‖x, −‖t2‖x) is largest at x = 0, which
    solves the problem when the ball |x − g0·u1| ≤ √φ contains it (the dual's kink).
    """

    def ref(g_r, g_f, lr, lf):
        t1, t2 = g_r, -g_f
        g0 = 0.5 * (t1 + t2)
        c = alpha * norm(g0)
        d = g0
        opposite = c > 0 and norm(t1) > 0 and norm(t2) > 0 and 1 + cos(t1, t2) <= 1e-12
        if opposite and abs(g0 @ unit(t1)) < c:
            d = np.zeros_like(g0)
        elif c > 0:

            def minimise(ta, tb):
                """x ∈ [0, 1] minimising F for g = x·ta + (1 − x)·tb."""
                a = ta - tb

                def F_(x):
                    g = x * ta + (1 - x) * tb
                    return g @ g0 + c * norm(g)

                def dF(x):
                    g = x * ta + (1 - x) * tb
                    ng = norm(g)
                    return g0 @ a + (c * (g @ a) / ng if ng > 0 else 0.0)

                grid = np.linspace(0.0, 1.0, 2001)
                G = np.outer(grid, ta) + np.outer(1 - grid, tb)
                k = int(np.argmin(G @ g0 + c * np.linalg.norm(G, axis=1)))
                lo, hi = grid[max(k - 1, 0)], grid[min(k + 1, 2000)]
                if dF(lo) >= 0:
                    x = lo
                elif dF(hi) <= 0:
                    x = hi
                else:
                    for _ in range(1100):  # bisection down to the smallest float spacing
                        mid = 0.5 * (lo + hi)
                        if mid in (lo, hi):
                            break
                        lo, hi = (mid, hi) if dF(mid) < 0 else (lo, mid)
                    x = 0.5 * (lo + hi)
                return min((0.0, 1.0, x), key=F_)  # compare with the end points

            # Keep the smaller of w, 1 − w exact: solve with the tasks swapped when w > ½.
            w = minimise(t1, t2)
            gw = w * t1 + (1 - w) * t2
            if w > 0.5:
                u = minimise(t2, t1)
                gw = (1 - u) * t1 + u * t2
            ngw = norm(gw)
            d = g0 + c * gw / ngw if ngw > 0 else g0
        return d / (1 + alpha**2) if rescale else d

    return ref


def nash_ref(**_):
    def ref(g_r, g_f, lr, lf):
        t1, t2 = g_r, -g_f
        ct = cos(t1, t2)
        if 1 + ct <= 1e-12:
            return np.zeros_like(g_r)
        return (unit(t1) + unit(t2)) / math.sqrt(1 + ct)

    return ref


def gradvac_ref(beta=0.5, **_):
    state = {"phi": 0.0}

    def ref(g_r, g_f, lr, lf):
        t1, t2 = g_r, -g_f
        n1, n2 = norm(t1), norm(t2)
        if n1 == 0 or n2 == 0:
            return t1 + t2
        rho, phi = cos(t1, t2), state["phi"]
        pc1, pc2 = t1.copy(), t2.copy()
        if rho < phi and phi < 1:
            s_rho, s_phi = math.sqrt(1 - rho**2), math.sqrt(1 - phi**2)
            pc1 = pc1 + t2 * n1 * (phi * s_rho - rho * s_phi) / (n2 * s_phi)
            pc2 = pc2 + t1 * n2 * (phi * s_rho - rho * s_phi) / (n1 * s_phi)
        state["phi"] = (1 - beta) * phi + beta * rho
        return pc1 + pc2

    return ref


def aligned_ref(**_):
    """d = σ_min · (row sum of the polar factor U Wᵀ of the task matrix G = U Σ Wᵀ)."""

    def ref(g_r, g_f, lr, lf):
        G = np.stack([g_r, -g_f])
        U, s, Wt = np.linalg.svd(G, full_matrices=False)
        if s.max() == 0:
            return np.zeros_like(g_r)
        keep = s**2 > s.max() ** 2 * 2 * EPS32
        U, s, Wt = U[:, keep], s[keep], Wt[keep]
        return s.min() * (U @ Wt).sum(axis=0)

    return ref


def famo_ref(gamma=0.01, lr=0.025, min_loss=1e-8, logit_optimizer="adam", **_):
    """The official FAMO code in torch: softmax VJP by autograd, torch's Adam (or SGD)."""
    w = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt_cls = torch.optim.Adam if logit_optimizer == "adam" else torch.optim.SGD
    opt = opt_cls([w], lr=lr, weight_decay=gamma)
    state: dict = {"prev": None}

    def ref(g_r, g_f, l_r, l_f):
        losses = torch.tensor([l_r, -l_f], dtype=torch.float64).clamp_min(min_loss)
        if state["prev"] is not None:
            delta = state["prev"].log() - losses.log()
            d = torch.autograd.grad(F.softmax(w, -1), w, grad_outputs=delta)[0]
            opt.zero_grad()
            w.grad = d
            opt.step()
        state["prev"] = losses
        ell = losses.clone().requires_grad_(True)
        z = F.softmax(w.detach(), -1)
        c = (z / ell).sum().detach()
        (cw,) = torch.autograd.grad((ell.log() * z / c).sum(), ell)  # weights on ∇ℓ_R, ∇ℓ_F
        return float(cw[0]) * g_r + float(cw[1]) * (-g_f)  # ∇ℓ_F = ∇(−L_F) = −g_F

    return ref


REFERENCES: dict[str, Callable] = {
    "ga": lambda **_: static_ref(0.0),
    "gd": lambda **_: static_ref(1.0),
    "gdiff": lambda c=0.5, **_: static_ref(c),
    "ngdiff": ngdiff_ref,
    "lossnorm": lossnorm_ref,
    "rlw": rlw_ref,
    "pcgrad": pcgrad_ref,
    "imtlg": imtlg_ref,
    "mgda": mgda_ref,
    "cagrad": cagrad_ref,
    "nash": nash_ref,
    "gradvac": gradvac_ref,
    "aligned": aligned_ref,
    "famo": famo_ref,
}
from test_combiners_field import FIELD_PARAMS, FIELD_REFERENCES  # noqa: E402  (issue 20's rules, same contract)

REFERENCES.update(FIELD_REFERENCES)

# Parameter settings exercised besides the defaults.
EXTRA_PARAMS: dict[str, list[dict]] = {
    "gdiff": [{"c": 0.2}, {"c": 1.0}],
    "pcgrad": [{"variant": "paper"}],
    "mgda": [{"normalization": n} for n in ("l2", "loss", "loss+")],
    "cagrad": [{"alpha": 0.2, "rescale": False}, {"alpha": 2.0}],
    "gradvac": [{"beta": 1.0}, {"beta": 0.1}],
    "famo": [{"logit_optimizer": "sgd", "lr": 0.5}, {"gamma": 0.0, "lr": 0.3}],
    **FIELD_PARAMS,
}

# The allowed |d − d_ref| has two parts.
# (1) RTOL × the size of the summed terms, ‖w_R g_R‖ + ‖w_F g_F‖ + ‖d_ref‖: float64 rounding,
#     looser where the reference itself is approximate (CAGrad's grid + bisection).
# (2) Conditioning: the Gram entries carry rounding error ~n·ε·‖g_i‖‖g_j‖, and near
#     degenerate inputs (1 ± cos ≈ 0, ‖t1 − t2‖ ≈ 0, a rank cut) every rule inherits a large
#     condition number from them. GRAM_WIGGLE × the largest move of the combiner's own d when
#     its Gram entries are nudged by that much measures it; it is tiny on well-posed inputs.
RTOL = {"cagrad": 1e-8}
GRAM_WIGGLE = 10.0


def conditioning(comb_before, g_r: np.ndarray, g_f: np.ndarray, losses: Losses, w) -> float:
    """Largest ‖Δd‖ over the 8 sign patterns of a 4(n + 2)ε nudge of (‖g_R‖², g_R·g_F, ‖g_F‖²)."""
    delta = 4 * (g_r.size + 2) * np.finfo(float).eps
    gram, nr, nf = gram_of(g_r, g_f), norm(g_r), norm(g_f)
    worst = 0.0
    for sr, sx, sf in itertools.product((-1.0, 1.0), repeat=3):
        nudged = Gram(
            gram.rr * (1 + sr * delta), gram.rf + sx * delta * nr * nf, gram.ff * (1 + sf * delta)
        )
        wp = copy.deepcopy(comb_before).weights(nudged, losses)
        worst = max(worst, norm((wp[0] - w[0]) * g_r - (wp[1] - w[1]) * g_f))
    return worst


def cases() -> list[tuple[str, dict]]:
    return [(n, {}) for n in COMBINERS.names()] + [
        (n, p) for n in COMBINERS.names() for p in EXTRA_PARAMS.get(n, [])
    ]


def case_id(case: tuple[str, dict]) -> str:
    name, params = case
    return name + "".join(f"-{k}={v}" for k, v in params.items())


# ────────────────────────────── inputs ──────────────────────────────

_rng = np.random.default_rng(12345)
_a, _b = _rng.standard_normal(7), _rng.standard_normal(7)
_z = np.zeros(7)
_e1, _e2 = np.eye(7)[0], np.eye(7)[1]

# (name, g_R, g_F): the cases that break naive formulas.
EXPLICIT = [
    ("generic", _a, _b),
    ("near_parallel", _a, 2.0 * _a + 1e-7 * _b),
    ("near_same_task", _a, -0.5 * _a + 1e-7 * _b),  # t1 ≈ t2 direction (no conflict)
    ("parallel_x2", _a, 2.0 * _a),  # exact: g_F = 2 g_R
    ("parallel_x3", _a, 3.0 * _a),
    ("near_identical", _a, _a + 1e-7 * _b),  # t1 ≈ −t2: g0 ≈ 0, tasks almost exactly conflicting
    ("near_opposite", _a, -_a + 1e-7 * _b),  # t1 ≈ t2: MGDA's ‖t1 − t2‖ ≈ 0
    ("identical", _a, _a.copy()),  # t1 = −t2: CAGrad's g0 = 0
    ("opposite", _a, -0.5 * _a),  # g_F = −g_R/2: tasks agree
    ("orthogonal", 3.0 * _e1, 0.5 * _e2),
    ("zero_gR", _z, _b),
    ("zero_gF", _a, _z),
    ("both_zero", _z, _z.copy()),
    ("tiny", 1e-100 * _a, 1e-100 * _b),
    ("huge", 1e100 * _a, 1e100 * _b),
    ("mixed_scales", 1e-50 * _a, 1e50 * _b),
    ("mixed_scales_rev", 1e50 * _a, 1e-50 * _b),
    ("dim1_same_sign", np.array([2.0]), np.array([3.0])),
    ("dim1_opposite_sign", np.array([2.0]), np.array([-3.0])),
]
EXPLICIT_LOSSES = (0.7, -1.3)  # L_R > 0, L_F < 0 (npo-style, so famo accepts it)


@st.composite
def vectors(draw, n: int) -> np.ndarray:
    x = np.array(draw(st.lists(st.floats(-1.0, 1.0), min_size=n, max_size=n)), dtype=np.float64)
    x[np.abs(x) < 1e-6] = 0.0  # no subnormal-ish entries: squares must not underflow
    return x * 10.0 ** draw(st.integers(-6, 6))


@st.composite
def steps(draw, max_steps: int = 4) -> list[tuple[np.ndarray, np.ndarray, float, float]]:
    """1–4 consecutive steps in R^n (n = 1..20): (g_R, g_F, L_R, L_F), with L_F < 0."""
    n = draw(st.integers(1, 20))
    out = []
    for _ in range(draw(st.integers(1, max_steps))):
        g_r, g_f = draw(vectors(n)), draw(vectors(n))
        if draw(st.integers(0, 9)) == 0:  # sometimes exactly (anti)parallel
            g_f = draw(st.sampled_from([2.0, -0.5, 1.0, -1.0])) * g_r
        l_r = draw(st.floats(1e-3, 10.0))
        l_f = -draw(st.floats(1e-3, 10.0))
        out.append((g_r, g_f, l_r, l_f))
    return out


SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# ───────────────────────── the per-combiner suite ─────────────────────────


def check_against_reference(name: str, params: dict, seq, seed: int = 0) -> None:
    if name not in REFERENCES:
        pytest.fail(f"combiner {name!r} has no reference formula in REFERENCES")
    comb = build_combiner(name, seed=seed, **params)
    ref = REFERENCES[name](seed=seed, **params)
    for step, (g_r, g_f, l_r, l_f) in enumerate(seq):
        before = copy.deepcopy(comb)
        w = comb.weights(gram_of(g_r, g_f), Losses(l_r, l_f))
        assert len(w) == 2 and all(type(x) is float for x in w), f"{name}: weights {w!r}"
        assert all(math.isfinite(x) for x in w), f"{name}: non-finite weights {w} at step {step}"
        d = w[0] * g_r - w[1] * g_f
        d_ref = ref(g_r, g_f, l_r, l_f)
        assert np.all(np.isfinite(d)) and np.all(np.isfinite(d_ref))
        err = norm(d - d_ref)
        scale = abs(w[0]) * norm(g_r) + abs(w[1]) * norm(g_f) + norm(d_ref)
        allowance = conditioning(before, g_r, g_f, Losses(l_r, l_f), w)
        tol = RTOL.get(name, 1e-10) * scale + GRAM_WIGGLE * allowance
        assert err <= tol, (
            f"{case_id((name, params))} step {step}: |d − d_ref| = {err:.3e} > {tol:.3e}\n"
            f"weights={w}\nconditioning allowance={allowance:.3e}\nd={d}\nd_ref={d_ref}"
        )


def test_every_combiner_has_a_reference():
    missing = sorted(set(COMBINERS.names()) - set(REFERENCES))
    assert not missing, f"add a reference formula to REFERENCES for: {', '.join(missing)}"


@pytest.mark.parametrize("case", cases(), ids=case_id)
@pytest.mark.parametrize("explicit", EXPLICIT, ids=lambda e: e[0])
def test_explicit_cases_match_reference(case, explicit):
    name, params = case
    _, g_r, g_f = explicit
    check_against_reference(name, params, [(g_r, g_f, *EXPLICIT_LOSSES)])


@pytest.mark.parametrize("case", cases(), ids=case_id)
@SETTINGS
@given(seq=steps(), seed=st.integers(0, 2**32 - 1))
def test_random_steps_match_reference(case, seq, seed):
    check_against_reference(*case, seq, seed=seed)


# ─────────────────────── properties across combiners ───────────────────────


def all_pairs():
    return st.one_of(
        st.sampled_from([(g_r, g_f) for _, g_r, g_f in EXPLICIT]),
        steps(max_steps=1).map(lambda s: s[0][:2]),
    )


@settings(max_examples=300, deadline=None)
@given(pair=all_pairs())
def test_ngdiff_lemma4(pair):
    """Paper Lemma 4 / Eq. 5: g_R·d ≥ 0 ≥ g_F·d for every g_R, g_F (zero gradients included)."""
    g_r, g_f = pair
    w = build_combiner("ngdiff").weights(gram_of(g_r, g_f), Losses(1.0, -1.0))
    d = w[0] * g_r - w[1] * g_f
    assert g_r @ d >= -1e-12 * norm(g_r) * (1 + norm(d))
    assert g_f @ d <= 1e-12 * norm(g_f) * (1 + norm(d))


@settings(max_examples=300, deadline=None)
@given(pair=all_pairs())
def test_imtlg_mgda_l2_nash_share_ngdiff_direction(pair):
    g_r, g_f = pair
    if norm(g_r) == 0 or norm(g_f) == 0 or 1 - abs(cos(g_r, g_f)) < 1e-12:
        return  # zero or exactly parallel: NGDiff's direction is not defined by angle
    gram, losses = gram_of(g_r, g_f), Losses(0.5, -2.0)
    w = build_combiner("ngdiff").weights(gram, losses)
    d_ng = w[0] * g_r - w[1] * g_f
    for name, params in [("imtlg", {}), ("mgda", {"normalization": "l2"}), ("nash", {})]:
        w = build_combiner(name, **params).weights(gram, losses)
        d = w[0] * g_r - w[1] * g_f
        assert cos(d, d_ng) >= 1 - 1e-9, f"{name}: cos(d, d_NGDiff) = {cos(d, d_ng)}"


@settings(max_examples=200, deadline=None)
@given(pair=all_pairs())
def test_nash_bargaining_condition(pair):
    """Nash-MTL's defining equation: α_i · (t_i·d) = 1 for every nonzero task."""
    g_r, g_f = pair
    a1, a2 = build_combiner("nash").weights(gram_of(g_r, g_f), Losses(1.0, -1.0))
    if 1 - cos(g_r, g_f) <= 1e-9:  # exactly conflicting tasks: no solution, zero step
        return
    d = a1 * g_r - a2 * g_f
    # 1 + cos θ comes from Gram entries with rounding error ~ε: relative error ε/(1 + cos θ)
    rel = 1e-10 + 20 * np.finfo(float).eps / (1 - cos(g_r, g_f))
    for alpha, t in ((a1, g_r), (a2, -g_f)):
        if norm(t) > 0:
            assert alpha * (t @ d) == pytest.approx(1.0, rel=rel)
        else:
            assert alpha == 0.0


@settings(max_examples=200, deadline=None)
@given(pair=all_pairs(), phi=st.floats(-0.95, 0.95))
def test_gradvac_reaches_target_cosine(pair, phi):
    """After vaccination cos(pc1, t2) = cos(pc2, t1) = φ̂ whenever ρ < φ̂."""
    g_r, g_f = pair
    t1, t2 = g_r, -g_f
    comb = build_combiner("gradvac", beta=0.5)
    comb.phi = phi
    w_r, w_f = comb.weights(gram_of(g_r, g_f), Losses(1.0, -1.0))
    rho = cos(t1, t2)
    if norm(t1) == 0 or norm(t2) == 0:
        assert (w_r, w_f) == (1.0, 1.0) and comb.phi == phi  # no projection, no EMA update
        return
    assert comb.phi == pytest.approx(0.5 * phi + 0.5 * rho, abs=1e-15)  # EMA updated always
    if rho >= phi:
        assert (w_r, w_f) == (1.0, 1.0)
        return
    if 1 - abs(rho) < 1e-12:  # (anti)parallel tasks: no second direction to rotate into
        return
    # pc1 = t1 + w1·t2 with w1 recovered from w_F = 1 + w1: rounding of w_F (≈ ε·|w_F|) moves
    # pc1 by ε·|w_F|·‖t2‖; and √(1 − ρ²) from Gram entries (error ~ε) is off by ~ε/(1 − ρ²).
    vaccinated = ((t1 + (w_f - 1.0) * t2, t1, t2, w_f), (t2 + (w_r - 1.0) * t1, t2, t1, w_r))
    for pc, own, other, w in vaccinated:
        tol = 1e-9 + 1e-15 * (abs(w) * norm(other) + norm(own)) / norm(pc) + 1e-14 / (1 - rho**2)
        assert cos(pc, other) == pytest.approx(phi, abs=tol)


def test_pcgrad_paper_variant_keeps_c_in_unit_interval():
    comb = build_combiner("pcgrad", variant="paper")
    for _, g_r, g_f in EXPLICIT:
        c, one_minus_c = comb.weights(gram_of(g_r, g_f), Losses(1.0, -1.0))
        assert 0.0 <= c <= 1.0 and c + one_minus_c == pytest.approx(1.0)
        assert c == 0.5 or g_r @ g_f > 0  # projected on conflict only
    # g_R·g_F < −‖g_R‖²: the unconditional formula would give c/(1 − c) < 0
    g_r, g_f = np.array([1.0, 0.0]), np.array([-2.0, 1.0])
    assert comb.weights(gram_of(g_r, g_f), Losses(1.0, -1.0)) == (0.5, 0.5)


def test_rlw_is_seeded_and_fresh_each_step():
    gram, losses = gram_of(_a, _b), Losses(1.0, -1.0)
    comb = build_combiner("rlw", seed=3)
    seq_a = [comb.weights(gram, losses) for _ in range(500)]
    comb.reset(3)
    assert [comb.weights(gram, losses) for _ in range(500)] == seq_a
    assert build_combiner("rlw", seed=4).weights(gram, losses) != seq_a[0]
    cs = np.array([c for c, _ in seq_a])
    assert len(set(cs)) == 500 and np.all((cs > 0) & (cs < 1))
    assert np.allclose([c + f for c, f in seq_a], 1.0)
    assert abs(cs.mean() - 0.5) < 0.05  # sigmoid of a symmetric variable


def test_famo_weights_move_towards_the_slower_task():
    """The update sign: a task whose loss fell more loses weight (FAMO balances improvement)."""
    comb = build_combiner("famo", lr=0.1)
    gram = gram_of(_a, _b)
    c0 = comb.weights(gram, Losses(1.0, -1.0))
    assert c0 == pytest.approx((0.5, 0.5))  # equal logits, equal losses
    c1 = comb.weights(gram, Losses(0.5, -1.0))  # retain loss halved, forget loss unchanged
    assert comb.xi[0] < comb.xi[1]
    # at equal logits the weights would be ∝ 1/ℓ = (2, 1); the logit step lowers c_R below that
    assert c1[0] < 2 / 3 and sum(c1) == pytest.approx(1.0)


# ─────────────────────────── errors and registry ───────────────────────────


def test_unknown_combiner_lists_valid_names_with_did_you_mean():
    with pytest.raises(RegistryError) as exc:
        build_combiner("ngdif")
    msg = str(exc.value)
    assert "Did you mean 'ngdiff'?" in msg
    for name in COMBINERS.names():
        assert name in msg


def test_unknown_parameter_is_named():
    with pytest.raises(RegistryError) as exc:
        build_combiner("pcgrad", varient="paper")
    assert "'varient'" in str(exc.value) and "Did you mean 'variant'?" in str(exc.value)


@pytest.mark.parametrize(
    "name, params, fragment",
    [
        ("gdiff", {"c": 1.5}, "c must lie in [0, 1], got 1.5"),
        ("gdiff", {"c": -0.1}, "c must lie in [0, 1]"),
        ("pcgrad", {"variant": "yu"}, "'symmetric', 'paper'"),
        ("mgda", {"normalization": "L2"}, "'none', 'l2', 'loss', 'loss+'"),
        ("cagrad", {"alpha": -1.0}, "alpha"),
        ("gradvac", {"beta": 1.5}, "beta must lie in [0, 1]"),
        ("famo", {"lr": 0.0}, "lr must be > 0"),
        ("famo", {"logit_optimizer": "rmsprop"}, "'adam', 'sgd'"),
    ],
)
def test_bad_parameter_values_are_refused(name, params, fragment):
    with pytest.raises(RegistryError) as exc:
        build_combiner(name, **params)
    assert fragment in str(exc.value)


def test_famo_refuses_ga_forget_loss():
    comb = build_combiner("famo")
    assert type(comb).needs_positive_forget_loss is True
    with pytest.raises(ValueError) as exc:
        comb.weights(gram_of(_a, _b), Losses(1.0, 2.3))  # GA: L_F = forget CE > 0
    assert GA_MESSAGE in str(exc.value)


def test_only_loss_log_rules_need_a_positive_forget_loss():
    needs = {n for n in COMBINERS.names() if COMBINERS.get(n).needs_positive_forget_loss}
    assert needs == {"famo"}


def test_lossnorm_zero_loss_drops_that_task():
    g_r, g_f = _a, _b
    assert build_combiner("lossnorm").weights(gram_of(g_r, g_f), Losses(0.0, -2.0)) == (0.0, 0.5)
    assert build_combiner("lossnorm").weights(gram_of(g_r, g_f), Losses(0.0, 0.0)) == (0.0, 0.0)
