//! Pearson's χ² goodness-of-fit test, with the survival function written out
//! (regularized upper incomplete gamma) so no statistics crate is needed.

/// Outcome of [`chi_square_test`].
#[derive(Clone, Debug, PartialEq)]
pub struct ChiSquare {
    pub statistic: f64,
    /// Degrees of freedom: bins − 1.
    pub df: usize,
    /// P(χ²_df ≥ statistic).
    pub p_value: f64,
}

/// Tests `observed` counts against `expected` probabilities (same order,
/// summing to 1). Cells expecting fewer than `min_expected` draws are pooled
/// into one bin, so the χ² approximation holds. A count in a cell of
/// probability 0 gives an infinite statistic and a p-value of 0.
pub fn chi_square_test(observed: &[u64], expected: &[f64], min_expected: f64) -> ChiSquare {
    assert_eq!(observed.len(), expected.len(), "one probability per cell");
    let draws: u64 = observed.iter().sum();
    let n = draws as f64;
    let mut bins: Vec<(f64, f64)> = Vec::new();
    let mut pooled = (0.0, 0.0);
    for (&o, &p) in observed.iter().zip(expected) {
        let e = p * n;
        if e >= min_expected {
            bins.push((o as f64, e));
        } else {
            pooled.0 += o as f64;
            pooled.1 += e;
        }
    }
    if pooled.1 > 0.0 {
        match bins.iter_mut().min_by(|a, b| a.1.total_cmp(&b.1)) {
            // Still too small on its own: fold it into the smallest bin.
            Some(smallest) if pooled.1 < min_expected => {
                smallest.0 += pooled.0;
                smallest.1 += pooled.1;
            }
            _ => bins.push(pooled),
        }
    }
    let impossible = observed
        .iter()
        .zip(expected)
        .any(|(&o, &p)| o > 0 && p <= 0.0);
    let statistic: f64 = if impossible {
        f64::INFINITY
    } else {
        bins.iter().map(|&(o, e)| (o - e).powi(2) / e).sum()
    };
    let df = bins.len().saturating_sub(1).max(1);
    ChiSquare {
        statistic,
        df,
        p_value: chi_square_sf(statistic, df),
    }
}

/// Survival function of the χ² distribution with `df` degrees of freedom:
/// P(X ≥ x) = Q(df/2, x/2).
pub fn chi_square_sf(x: f64, df: usize) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    if x.is_infinite() {
        return 0.0;
    }
    regularized_gamma_q(df as f64 / 2.0, x / 2.0)
}

/// Q(a, x) = Γ(a, x) / Γ(a), for a > 0, x ≥ 0.
///
/// The power series for P converges fast below x < a + 1, the continued
/// fraction for Q above it (Numerical Recipes' split); computing each side
/// directly avoids the cancellation of 1 − P for tiny tails.
pub fn regularized_gamma_q(a: f64, x: f64) -> f64 {
    assert!(a > 0.0 && x >= 0.0, "Q(a, x) needs a > 0, x >= 0");
    if x == 0.0 {
        return 1.0;
    }
    let log_prefactor = a * x.ln() - x - ln_gamma(a);
    if x < a + 1.0 {
        // P(a, x) = e^{−x} x^a / Γ(a + 1) · Σ_n x^n / ((a+1)…(a+n))
        let mut term = 1.0 / a;
        let mut sum = term;
        let mut denominator = a;
        for _ in 0..10_000 {
            denominator += 1.0;
            term *= x / denominator;
            sum += term;
            if term.abs() < sum.abs() * 1e-16 {
                break;
            }
        }
        (1.0 - sum * log_prefactor.exp()).max(0.0)
    } else {
        // Lentz's method for Q's continued fraction
        // 1/(x+1−a− 1·(1−a)/(x+3−a− 2·(2−a)/(x+5−a− …))).
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        h * log_prefactor.exp()
    }
}

/// ln Γ(x) for x > 0 (Lanczos approximation, g = 7, 9 terms; ~15 digits).
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEFFICIENTS: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection: Γ(x)Γ(1−x) = π / sin(πx).
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut sum = COEFFICIENTS[0];
    for (i, &c) in COEFFICIENTS.iter().enumerate().skip(1) {
        sum += c / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + sum.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(got: f64, want: f64, tolerance: f64) {
        assert!(
            (got - want).abs() <= tolerance * want.abs().max(1e-300),
            "got {got}, want {want}"
        );
    }

    #[test]
    fn ln_gamma_known_values() {
        assert!(ln_gamma(1.0).abs() < 1e-14);
        assert_close(ln_gamma(10.0), 362_880.0_f64.ln(), 1e-13);
        assert_close(ln_gamma(0.5), std::f64::consts::PI.sqrt().ln(), 1e-13);
        assert_close(ln_gamma(0.1), 2.252_712_651_734_206, 1e-12);
    }

    #[test]
    fn closed_forms_for_even_df() {
        for x in [0.1, 1.0, 2.0, 7.5, 30.0, 200.0] {
            // df 2: e^{−x/2}; df 4: e^{−x/2}(1 + x/2).
            assert_close(chi_square_sf(x, 2), (-x / 2.0).exp(), 1e-12);
            assert_close(
                chi_square_sf(x, 4),
                (-x / 2.0).exp() * (1.0 + x / 2.0),
                1e-12,
            );
        }
    }

    #[test]
    fn textbook_critical_values() {
        assert_close(chi_square_sf(3.841_458_820_694_124, 1), 0.05, 1e-9);
        assert_close(chi_square_sf(6.634_896_601_021_214, 1), 0.01, 1e-9);
        assert_close(chi_square_sf(18.307_038_053_275_146, 10), 0.05, 1e-9);
        assert_close(chi_square_sf(124.342_113_404_004_07, 100), 0.05, 1e-8);
        assert_close(chi_square_sf(0.454_936_423_119_572_8, 1), 0.5, 1e-9);
        assert_eq!(chi_square_sf(0.0, 5), 1.0);
        assert_eq!(chi_square_sf(f64::INFINITY, 5), 0.0);
    }

    #[test]
    fn fair_counts_pass_and_skewed_counts_fail() {
        let expected = [0.25; 4];
        let fair = chi_square_test(&[2_510, 2_470, 2_505, 2_515], &expected, 5.0);
        assert_eq!(fair.df, 3);
        assert!(fair.p_value > 0.5, "{fair:?}");
        let skewed = chi_square_test(&[2_700, 2_300, 2_500, 2_500], &expected, 5.0);
        assert!(skewed.p_value < 1e-6, "{skewed:?}");
    }

    #[test]
    fn rare_cells_are_pooled_and_impossible_cells_fail() {
        let expected = [0.5, 0.4999, 0.0001];
        let pooled = chi_square_test(&[500, 500, 0], &expected, 5.0);
        assert_eq!(pooled.df, 1);
        let impossible = chi_square_test(&[500, 499, 1], &[0.5, 0.5, 0.0], 5.0);
        assert_eq!(impossible.p_value, 0.0);
    }
}
