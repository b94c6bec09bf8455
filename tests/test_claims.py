"""Every claim of the reproduction can fail.

Each experiment's claims are computed by `claims(results, cfg)` from a small
results object (what `measure` reads from the stores). For every claim this
file builds the results the theory predicts (all claims pass) and then the
results of the failure the claim guards against — an imbalance that grows
with α, a slope of 0, a late alignment, an injective m, … — and asserts that
exactly that claim FAILs. The configs are the shipped ones (quick mode), so a
threshold moved far enough to pass everything breaks these tests.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from asymsense.paper import (e1_convergence, e2_alpha, e3_balancing, e4_phases, e5_iterations, e6_samples, e7_noise, e8_lifted,
                             e9_exponent, e10_noise_scaling, e11_kappa, e12_rank_scaling, e13_step_rule, e14_train_test)
from asymsense.paper.fitting import loglog_slope_ci
from asymsense.paper.registry import experiment_config

RNG = np.random.default_rng(11)


def cfg(name: str) -> dict:
    return experiment_config(name, "quick")["analysis"]


def verdicts(claims) -> dict[str, bool]:
    return {c.id: c.passed for c in claims}


def failing(module, results, name) -> set[str]:
    return {c.id for c in module.claims(results, cfg(name)) if not c.passed}


def noisy(values, rel=0.05):
    v = np.asarray(values, dtype=float)
    return v * np.exp(RNG.normal(0, rel, v.shape))


# --------------------------------------------------------------------------- E1
def e1_low(fails=None, seeds=10):
    """Final errors of the "lowm" sweep (r = 3): {k: errors over seeds}; fails[k] seeds of width k end at 0.05."""
    fails = fails or {}
    return {k: np.r_[np.full(fails.get(k, 0), 5e-2), noisy([1e-3 if k > 3 else 1e-12] * (seeds - fails.get(k, 0)))] for k in (3, 4, 6, 12, 30)}


def e1_good():
    return {"alpha": 1e-6, "rank": 3, "exact": noisy([5e-16] * 3), "over": noisy([1e-5] * 12), "seeds": 3,
            "floor_spread": [1.5, 1.8, 1.4], "time_growth": [1.0, 1.1, 1.05], "tail": noisy([0.9] * 12),
            "low": e1_low({3: 2, 6: 2}), "low_seeds": 10, "low_oversampling": 1.5}


def test_e1_claims_pass_on_recovery_and_fail_on_a_floor_a_stall_or_too_few_seeds():
    assert all(verdicts(e1_convergence.claims(e1_good(), cfg("e1"))).values())
    floor = {**e1_good(), "exact": np.array([1e-15, 1e-8, 1e-15])}      # k = r stalls above rounding
    assert failing(e1_convergence, floor, "e1") == {"E1.a"}
    stall = {**e1_good(), "over": np.r_[noisy([1e-5] * 11), 3e-3]}      # one width stalls at an O(1e-3) floor
    assert failing(e1_convergence, stall, "e1") == {"E1.b"}
    one_seed = {**e1_good(), "seeds": 1}
    assert failing(e1_convergence, one_seed, "e1") == {"E1.a", "E1.b", "E1.c", "E1.d", "E1.e"}   # E1.f has its own seeds
    assert failing(e1_convergence, {**e1_good(), "floor_spread": [1.5, 10.0, 1.4]}, "e1") == {"E1.c"}   # the floor depends on k
    assert failing(e1_convergence, {**e1_good(), "time_growth": [1.0, 2.0, 1.05]}, "e1") == {"E1.d"}   # wider is slower
    assert failing(e1_convergence, {**e1_good(), "tail": np.r_[noisy([0.9] * 11), 1e-3]}, "e1") == {"E1.e"}  # a linear tail


@pytest.mark.parametrize("fails, passes", [
    ({}, True),                                    # nobody fails
    ({3: 8, 4: 6}, True),                          # k < 2r fails more often (the landscape's prediction, not required)
    ({3: 2, 4: 2, 6: 3, 12: 3, 30: 2}, True),      # the same rate for every width
    ({6: 8, 12: 10, 30: 10}, False),               # only the wide models fail (an α-floor above the tolerance)
    ({6: 4, 12: 4, 30: 4}, False),                 # k ≥ 2r fails in 4 of 10 seeds, k < 2r never
])
def test_e1f_fails_when_wider_models_fail_more_often_at_low_m(fails, passes):
    res = {**e1_good(), "low": e1_low(fails)}
    assert ("E1.f" not in failing(e1_convergence, res, "e1")) == passes
    if not passes:
        assert failing(e1_convergence, res, "e1") == {"E1.f"}


def test_e1f_counts_a_non_finite_error_as_a_failure_and_needs_ten_seeds_per_width():
    low = e1_low()
    for k in (6, 12, 30):
        low[k][:4] = np.nan                                                  # diverged runs
    assert failing(e1_convergence, {**e1_good(), "low": low}, "e1") == {"E1.f"}
    few = {**e1_good(), "low": e1_low(seeds=5), "low_seeds": 5}
    assert failing(e1_convergence, few, "e1") == {"E1.f"}
    assert next(c for c in e1_convergence.claims(few, cfg("e1")) if c.id == "E1.f").verdict == "FAIL (not measured)"
    assert failing(e1_convergence, {**e1_good(), "low": {}, "low_seeds": 0}, "e1") == {"E1.f"}   # no lowm sweep stored


# --------------------------------------------------------------------------- E2
def alpha_groups(slope, n=5, alphas=(1e-2, 1e-3, 1e-4, 1e-5, 1e-6)):
    a = np.asarray(alphas)
    return [(a, noisy(0.5 * a**slope, 0.1)) for _ in range(n)]


def test_e2_claims_fail_when_the_error_does_not_shrink_polynomially():
    good = {"slopes": [("budget 500 iterations", loglog_slope_ci(alpha_groups(0.7))), ("budget 1500 iterations", loglog_slope_ci(alpha_groups(0.65)))]}
    assert all(verdicts(e2_alpha.claims(good, cfg("e2"))).values())
    flat = {"slopes": [("budget 500 iterations", loglog_slope_ci(alpha_groups(0.7))), ("budget 1500 iterations", loglog_slope_ci(alpha_groups(0.0)))]}
    assert failing(e2_alpha, flat, "e2") == {"E2.b"}
    log_only = {"slopes": [("budget 500 iterations", loglog_slope_ci(alpha_groups(0.2))), ("budget 1500 iterations", loglog_slope_ci(alpha_groups(0.65)))]}
    assert failing(e2_alpha, log_only, "e2") == {"E2.a"}                     # a weak α-dependence (≈ logarithmic over 4 decades)
    assert [c.id for c in e2_alpha.claims(good, cfg("e2"))] == ["E2.a", "E2.b"]  # no oracle-rule duplicate of E2.b


# --------------------------------------------------------------------------- E3
def e3_results(imbalance=lambda a, m: 0.014 * m, unbalanced=30.0, explicit=1.0, seeds=5):
    a, m = (x.ravel() for x in np.meshgrid([1e-2, 1e-3, 1e-4, 1e-5], [0.05, 0.1, 0.2, 0.4]))
    groups = [(a, m, noisy(imbalance(a, m), 0.03)) for _ in range(seeds)]
    fgd = {s: 1.2e-3 * (1 + 0.1 * s) for s in range(seeds)}
    imb = {s: 5e-3 for s in range(seeds)}
    return {"groups": groups, "per_mu": np.concatenate([g[2] / g[1] for g in groups]),
            "compare": {"fgd": fgd, "explicit": {s: e * explicit for s, e in fgd.items()}, "unbalanced": {s: e * unbalanced for s, e in fgd.items()}},
            "fgd_imbalance": imb, "balance": 0.5}


def test_e3_claims_pass_on_implicit_balancing():
    assert all(verdicts(e3_balancing.claims(e3_results(), cfg("e3"))).values())


@pytest.mark.parametrize("perturbation, fails", [
    (dict(imbalance=lambda a, m: 0.3 * np.ones_like(m)), {"E3.a", "E3.b"}),        # O(1) imbalance, no μ-dependence
    (dict(imbalance=lambda a, m: 0.014 * m * (a / 1e-5) ** 0.3), {"E3.a", "E3.c"}),  # imbalance grows with α
    (dict(imbalance=lambda a, m: 0.014 * m * (1e-5 / a) ** 0.3), {"E3.c"}),        # … or as α → 0
    (dict(imbalance=lambda a, m: 0.05 * m**2), {"E3.b"}),                          # O(μ²) total: not the O(μ²)-per-step sum
    (dict(unbalanced=1.5), {"E3.d"}),                                               # an unbalanced start costs nothing
    (dict(explicit=0.5), {"E3.e"}),                                                 # the explicit term halves the error
])
def test_e3_claims_fail_on_the_failure_they_guard_against(perturbation, fails):
    assert failing(e3_balancing, e3_results(**perturbation), "e3") == fails


# --------------------------------------------------------------------------- E4
def e4_results(n=10, complete=None, size=1e-5, spurious=3e-5, slope=0.8):
    groups = [(np.array([1e-2, 1e-4, 1e-6]), noisy(3e-5 * (np.array([1e-2, 1e-4, 1e-6]) / 1e-6) ** slope, 0.1)) for _ in range(n)]
    return {"alpha": 1e-6, "complete": np.ones(n, bool) if complete is None else np.asarray(complete, bool),
            "size_at_alignment": np.full(n, size), "spurious": noisy([spurious] * n), "spurious_groups": groups}


def test_e4_claims_fail_on_reversed_phases_late_alignment_spurious_growth_or_too_few_seeds():
    assert all(verdicts(e4_phases.claims(e4_results(), cfg("e4"))).values())
    assert failing(e4_phases, e4_results(complete=[True] * 7 + [False] * 3), "e4") == {"E4.a"}   # phase order broken in 3 of 10
    assert failing(e4_phases, e4_results(size=1e-2), "e4") == {"E4.a"}                          # alignment only once UVᵀ is large
    assert failing(e4_phases, e4_results(spurious=5e-2), "e4") == {"E4.b"}                      # a spurious direction grows
    assert failing(e4_phases, e4_results(slope=0.0), "e4") == {"E4.c"}                          # spurious part independent of α
    assert failing(e4_phases, e4_results(n=5), "e4") == {"E4.a", "E4.b"}                         # 5 seeds are not enough


# --------------------------------------------------------------------------- E5
def e5_results(rate=1.0, r2=0.999, rate2=1.0, r2_2=0.999):
    return {"tolerances": [(0.1, noisy([r2] * 5, 1e-4).clip(max=1), noisy([rate] * 5, 0.03)), (0.01, np.full(5, r2_2), noisy([rate2] * 5, 0.03))]}


def test_e5_claims_fail_off_the_log_law_or_at_the_wrong_rate():
    assert all(verdicts(e5_iterations.claims(e5_results(), cfg("e5"))).values())
    assert failing(e5_iterations, e5_results(r2=0.8), "e5") == {"E5.a"}        # hitting times not linear in log(1/α)
    assert failing(e5_iterations, e5_results(rate=0.5), "e5") == {"E5.b"}      # rate set by σ₁, not σ_r (κ = 2)
    assert failing(e5_iterations, e5_results(rate=0.0), "e5") == {"E5.b"}      # no α-dependence at all
    assert failing(e5_iterations, e5_results(rate=2.0), "e5") == {"E5.b"}      # twice the symmetric law's cost
    assert failing(e5_iterations, e5_results(r2_2=0.9, rate2=0.6), "e5") == {"E5.c", "E5.d"}  # the same at the second tolerance
    unreached = {"tolerances": [(0.1, np.array([0.999, np.nan, 0.999, 0.999, 0.999]), np.ones(5)), (0.01, np.full(5, 0.999), np.ones(5))]}
    assert failing(e5_iterations, unreached, "e5") == {"E5.a"}                 # a seed without enough reached points


# --------------------------------------------------------------------------- E6
def e6_results(over=2.0, exact=1.5, nuclear=2.0, fill=0.62):
    return {"transitions": {"over": {1: 1.5, 2: over, 3: over}, "exact": {1: 1.0, 2: exact, 3: exact}, "nuclear": {1: 1.5, 2: nuclear, 3: nuclear}},
            "max_fill": fill}


def test_e6_claims_fail_on_an_injective_grid_or_a_late_transition():
    assert all(verdicts(e6_samples.claims(e6_results(), cfg("e6"))).values())
    assert failing(e6_samples, e6_results(fill=1.07), "e6") == {"E6.a"}                   # m > n1·n2 somewhere: A injective
    assert failing(e6_samples, e6_results(over=3.0), "e6") == {"E6.b"}                    # FGD needs one ratio more than nuclear + a step
    assert failing(e6_samples, e6_results(over=float("inf")), "e6") == {"E6.b", "E6.c"}   # FGD never recovers inside the grid
    assert failing(e6_samples, e6_results(nuclear=float("inf")), "e6") == {"E6.e"}        # nuclear norm never recovers (FGD does)
    assert failing(e6_samples, e6_results(exact=float("inf")), "e6") == {"E6.d"}


def test_e6_transition_skips_untested_cells_and_needs_every_larger_ratio():
    assert e6_samples.transition([1, 2, 3], [0.2, 1.0, 1.0], 0.8) == 2
    assert e6_samples.transition([1, 2, 3], [1.0, 0.4, 1.0], 0.8) == 3
    assert e6_samples.transition([1, 2, 3], [0.2, 1.0, np.nan], 0.8) == 2
    assert e6_samples.transition([1, 2, 3], [0.2, 0.4, 0.6], 0.8) == float("inf")


# --------------------------------------------------------------------------- E7
def test_e7_claims_fail_without_overfitting_or_without_early_stopping():
    good = {"widest": 80, "overfit": noisy([2.5] * 8), "val_ratio": noisy([1.12] * 16)}
    assert all(verdicts(e7_noise.claims(good, cfg("e7"))).values())
    assert failing(e7_noise, {**good, "overfit": noisy([1.05] * 8)}, "e7") == {"E7.a"}     # the path does not overfit
    assert failing(e7_noise, {**good, "val_ratio": noisy([2.5] * 16)}, "e7") == {"E7.b"}   # "stopping" = the final iterate


# --------------------------------------------------------------------------- E8
def e8_results(n=10, rates=(1.0, 1.0), closest=0.05):
    return {"rates": np.tile(rates, (n, 1)) + RNG.normal(0, 1e-5, (n, 2)), "closest": noisy([closest] * n), "gaps": [0.7] * n, "final": np.full(n, 1e-3)}


def test_e8_claims_fail_off_the_power_method_or_without_early_alignment():
    assert all(verdicts(e8_lifted.claims(e8_results(), cfg("e8"))).values())
    assert failing(e8_lifted, e8_results(rates=(1.0, 0.75)), "e8") == {"E8.a"}   # the decaying direction is fed (not a power method)
    assert failing(e8_lifted, e8_results(rates=(0.9, 1.0)), "e8") == {"E8.a"}    # growth slower than 1 + μσ₁
    late = e8_results()
    late["closest"][:3] = 0.3                                                     # 3 of 10 seeds align only once UVᵀ is large
    assert failing(e8_lifted, late, "e8") == {"E8.b"}
    assert failing(e8_lifted, e8_results(n=3), "e8") == {"E8.a", "E8.b"}        # 3 seeds are not enough


def test_e8_power_rates_measure_the_geometric_rate_of_each_component():
    it = np.arange(40.0)
    mu, lam = 0.5, 1.0
    w = 1e-6 * 1.5**it
    h = {"iteration": it, "w_norm": w, "c_top": 1e-6 * (1 + mu * lam) ** it, "c_bottom": 1e-6 * (1 - mu * lam) ** it}

    class H(dict):
        def num(self, k):
            return np.asarray(self[k], float)

    top, bottom = e8_lifted.power_rates(H(h), mu, lam, 1e-2, 1e-3)
    assert top == pytest.approx(1.0, abs=1e-9) and bottom == pytest.approx(1.0, abs=1e-9)
    fed = H({**h, "c_bottom": 1e-6 * (1 - mu * lam) ** it + 1e-8})  # a constant feed stops the decay
    assert abs(e8_lifted.power_rates(fed, mu, lam, 1e-2, 1e-3)[1] - 1) > 0.1


# --------------------------------------------------------------------------- E9
def e9_results(slopes):
    a = np.array([1e-2, 1e-3, 1e-4, 1e-5, 1e-6])
    return {"groups": {o: {s: (a, noisy(0.3 * a**sl, 0.1)) for s in range(5)} for o, sl in slopes.items()}}


def test_e9_claim_fails_when_the_exponent_does_not_rise_with_oversampling():
    assert all(verdicts(e9_exponent.claims(e9_results({3.0: 0.5, 5.0: 0.7, 8.0: 0.9, 11.0: 1.1}), cfg("e9"))).values())
    assert failing(e9_exponent, e9_results({3.0: 0.7, 5.0: 0.7, 8.0: 0.7, 11.0: 0.7}), "e9") == {"E9.a"}
    assert failing(e9_exponent, e9_results({3.0: 1.0, 11.0: 0.6}), "e9") == {"E9.a"}
    assert failing(e9_exponent, {"groups": {3.0: {}}}, "e9") == {"E9.a"}


# --------------------------------------------------------------------------- E10
def e10_results(error=lambda s: 0.2 * s, ratio=1.3):
    sig = np.array([1e-4, 1e-3, 1e-2, 3e-2])
    d = {"groups": [(sig, noisy(error(sig), 0.05)) for _ in range(5)], "ratios": noisy([ratio] * 20)}
    return {"by_oversampling": {3.0: copy.deepcopy(d), 5.0: d}}


@pytest.mark.slow
def test_e10_claims_fail_off_the_linear_noise_law_or_far_from_the_oracle():
    assert all(verdicts(e10_noise_scaling.claims(e10_results(), cfg("e10"))).values())
    assert failing(e10_noise_scaling, e10_results(error=lambda s: 0.2 * s + 1e-3), "e10") == {"E10.a", "E10.c"}   # an error floor
    assert failing(e10_noise_scaling, e10_results(error=lambda s: 0.2 * s**0.5), "e10") == {"E10.a", "E10.c"}     # √σ: not the oracle rate
    assert failing(e10_noise_scaling, e10_results(ratio=3.0), "e10") == {"E10.b", "E10.d"}                        # 3× the oracle
    assert failing(e10_noise_scaling, e10_results(ratio=0.5), "e10") == {"E10.b", "E10.d"}                        # below the oracle: a bug


# --------------------------------------------------------------------------- E11
def e11_results(slope=1.0, order=(True,) * 5, final=1e-5):
    sig = np.array([1.0, 0.6, 0.2, 1.0, 0.5, 0.125])
    p = np.log(1e6) / np.log1p(0.5 * sig)
    return {"law": [(p, slope * p + 10 + RNG.normal(0, 1, p.size)) for _ in range(5)], "order": np.array(order, bool),
            "finals": {1.0: np.full(5, final), 8.0: np.full(5, final)}}


def test_e11_claims_fail_off_the_learning_law_out_of_order_or_without_recovery():
    assert all(verdicts(e11_kappa.claims(e11_results(), cfg("e11"))).values())
    assert failing(e11_kappa, e11_results(slope=0.0), "e11") == {"E11.a"}                       # all components learned at once
    assert failing(e11_kappa, e11_results(slope=2.0), "e11") == {"E11.a"}                       # twice the predicted time
    assert failing(e11_kappa, e11_results(order=(True, False, False, True, True)), "e11") == {"E11.b"}  # no staircase
    bad = e11_results()
    bad["finals"][8.0] = np.array([1e-5, 0.3, 0.3, 1e-5, 1e-5])                                 # large κ fails in 2 of 5
    assert failing(e11_kappa, bad, "e11") == {"E11.c"}


# --------------------------------------------------------------------------- E12
def e12_results(gamma=1.0, ranks=(1, 2, 3, 4), fill=0.66, step=1.25):
    """Transitions m*/(n1 + n2) = 2·r^γ, each bracketed by one grid step below."""
    return {"brackets": {r: (2 * r**gamma / step, 2 * r**gamma) for r in ranks}, "max_fill": fill}


def test_e12_claims_fail_beyond_r_squared_an_injective_grid_or_a_rank_outside_the_grid():
    assert all(verdicts(e12_rank_scaling.claims(e12_results(), cfg("e12"))).values())
    assert failing(e12_rank_scaling, e12_results(gamma=3.0), "e12") == {"E12.b"}                  # m* ∝ r³
    assert failing(e12_rank_scaling, e12_results(gamma=1.9, step=2.0), "e12") == {"E12.b"}        # within 2 only at the point, not the bracket
    assert failing(e12_rank_scaling, e12_results(fill=1.2), "e12") == {"E12.a"}                   # A injective somewhere
    outside = e12_results()
    outside["brackets"][4] = (float("inf"), float("inf"))                                           # the largest rank never recovers
    assert failing(e12_rank_scaling, outside, "e12") == {"E12.b"}


def test_e12_gamma_interval_is_exact_over_the_brackets():
    res = e12_results(gamma=1.0, step=1.5)
    est = e12_rank_scaling.gamma(res["brackets"])
    assert est.value == pytest.approx(1.0)
    corners = []
    for bits in range(16):                                   # every corner of the box of brackets
        y = [np.log(res["brackets"][r][(bits >> i) & 1]) for i, r in enumerate((1, 2, 3, 4))]
        corners.append(np.polyfit(np.log([1, 2, 3, 4]), y, 1)[0])
    assert est.low == pytest.approx(min(corners)) and est.high == pytest.approx(max(corners))


# --------------------------------------------------------------------------- E13
def e13_results(deviation=1e-15, step_ratio=1.0, low_success=1.0, high_success=0.0):
    cells = {(o, mu): {"success": low_success if mu <= 0.5 else (high_success if mu >= 1.25 else 0.5), "diverged": 0.0, "n": 5}
             for o in (3.0, 10.0) for mu in (0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)}
    return {"deviation": np.full(15, deviation), "factor_deviation": np.full(15, 1e-15), "step_ratio": np.full(15, step_ratio), "cells": cells}


def test_e13_claims_fail_on_a_scale_dependent_rule_an_unstable_small_step_or_a_stable_large_one():
    assert all(verdicts(e13_step_rule.claims(e13_results(), cfg("e13"))).values())
    assert failing(e13_step_rule, e13_results(deviation=1e-3), "e13") == {"E13.a"}                # trajectory changes with c
    assert failing(e13_step_rule, e13_results(step_ratio=1.01), "e13") == {"E13.a"}               # μ not scaled as 1/c
    assert failing(e13_step_rule, e13_results(low_success=0.6), "e13") == {"E13.b"}               # unstable below the edge
    assert failing(e13_step_rule, e13_results(high_success=0.2), "e13") == {"E13.c"}              # recovers beyond 2/L
    assert failing(e13_step_rule, {**e13_results(), "cells": {}}, "e13") == {"E13.b", "E13.c"}    # no map: not measured


# --------------------------------------------------------------------------- E14
def e14_results(over=0.5, exact=1.0, test_ratio=1.3, tail=0.6):
    return {"over_train": noisy([over] * 5, 0.02), "exact_train": noisy([exact] * 5, 0.01), "test_ratio": noisy([test_ratio] * 5, 0.03),
            "train_ratio": np.full(5, 0.7), "tail_ratio": noisy([tail] * 25, 0.05)}


def test_e14_claims_fail_without_interpolation_off_the_least_squares_level_with_improving_test_or_a_visible_tail():
    assert all(verdicts(e14_train_test.claims(e14_results(), cfg("e14"))).values())
    assert failing(e14_train_test, e14_results(over=1.0), "e14") == {"E14.a"}                     # stops at the least-squares level
    assert failing(e14_train_test, e14_results(exact=0.7), "e14") == {"E14.b"}                    # rank r below its own LS level: a bug
    assert failing(e14_train_test, e14_results(test_ratio=0.6), "e14") == {"E14.c"}               # test keeps improving with train
    assert failing(e14_train_test, e14_results(tail=50.0), "e14") == {"E14.d"}                    # error carried by the visible blocks


# --------------------------------------------------------------------------- every claim is covered
def test_every_claim_id_of_the_shipped_experiments_has_a_failing_input_here():
    """The claim ids the tests above make fail cover every claim the analyses emit."""
    import inspect
    import re
    import sys

    source = inspect.getsource(sys.modules[__name__])
    tested = set(re.findall(r'"(E\d+\.[a-z])"', source))
    emitted = set()
    for module, res, name in [(e1_convergence, e1_good(), "e1"), (e3_balancing, e3_results(), "e3"), (e4_phases, e4_results(), "e4"),
                              (e5_iterations, e5_results(), "e5"), (e6_samples, e6_results(), "e6"), (e8_lifted, e8_results(), "e8"),
                              (e9_exponent, e9_results({3.0: 0.5, 11.0: 1.0}), "e9"), (e10_noise_scaling, e10_results(), "e10"),
                              (e11_kappa, e11_results(), "e11"), (e12_rank_scaling, e12_results(), "e12"),
                              (e13_step_rule, e13_results(), "e13"), (e14_train_test, e14_results(), "e14")]:
        emitted |= {c.id for c in module.claims(res, cfg(name))}
    emitted |= {"E2.a", "E2.b", "E7.a", "E7.b"}
    missing = {i for i in emitted if i not in tested}
    assert not missing, f"claims without a failing-input test: {sorted(missing)}"


# --------------------------------------------------------------------------- the regime line
def test_regime_proxies_shrink_towards_the_rip_regime_and_report_injectivity():
    from asymsense.paper.regime import problem_regime

    base = {"n1": 12, "n2": 10, "rank": 2, "cond": 2.0, "noise": 0.0, "problem_seed": 1, "operator_seed": 2, "noise_seed": 3}
    poor = problem_regime({**base, "m": 60}, 0.5)
    good = problem_regime({**base, "m": 6000}, 0.5)
    assert poor["oversampling"] == pytest.approx(60 / (2 * 20)) and poor["fill"] == pytest.approx(0.5) and good["fill"] == 50
    assert good["gap"] < poor["gap"] and good["sine"] < poor["sine"] and good["sine"] < 0.2
    assert poor["kappa"] == pytest.approx(2.0) and poor["mu_norm"] == pytest.approx(0.5)
