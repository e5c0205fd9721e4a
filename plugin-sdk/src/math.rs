//! Portable math for scorers: the same bits on every target.
//!
//! `f64::powf` and `f64::exp` call the platform's libm: glibc natively, a
//! port of musl's in wasm. Their last bits can differ, and the wasm one is
//! slower. A scorer that uses these functions gives identical answers in
//! the component and in its native build (replays agree bit for bit), and
//! costs about the same in both.

use std::f64::consts::{LN_2, LOG2_10};

/// `2^x`, correct to within a few units in the last place for the range
/// scorers use; 0 below 2^-1022 and infinity above 2^1023.
pub fn pow2(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x >= 1024.0 {
        return f64::INFINITY;
    }
    if x < -1022.0 {
        return 0.0;
    }
    // x = n + f with n an integer and |f| <= 1/2, so 2^x = 2^n · e^(f·ln 2).
    // Ties to even: one instruction in wasm (`f64.nearest`), where `round`
    // is a libm call.
    let n = x.round_ties_even();
    let r = (x - n) * LN_2;
    // Taylor series of e^r for |r| <= 0.347, by Horner's rule: the first
    // term left out is below 2e-16 of the result.
    let mut e_r = INV_FACTORIAL[12];
    for k in (0..12).rev() {
        e_r = e_r * r + INV_FACTORIAL[k];
    }
    // n is in [-1022, 1024): 2^n as exponent bits, in two steps at the top
    // so it stays a normal number.
    let n = n as i64;
    if n == 1024 {
        return e_r * 2.0 * exp2_int(1023);
    }
    e_r * exp2_int(n)
}

/// `10^x`; see [`pow2`].
pub fn pow10(x: f64) -> f64 {
    pow2(x * LOG2_10)
}

fn exp2_int(n: i64) -> f64 {
    f64::from_bits(((n + 1023) as u64) << 52)
}

/// 1/k! for k = 0..=12.
const INV_FACTORIAL: [f64; 13] = {
    let mut a = [1.0; 13];
    let mut k = 1;
    while k < 13 {
        a[k] = a[k - 1] / k as f64;
        k += 1;
    }
    a
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_libm_to_a_few_ulps() {
        for i in 0..=10_000 {
            let x = f64::from(i) / 10_000.0;
            let (ours, libm) = (pow10(x), 10f64.powf(x));
            assert!(
                ((ours - libm) / libm).abs() < 1e-15,
                "10^{x}: {ours} vs {libm}"
            );
            let x = f64::from(i) / 100.0 - 50.0;
            let (ours, libm) = (pow2(x), x.exp2());
            assert!(
                ((ours - libm) / libm).abs() < 1e-15,
                "2^{x}: {ours} vs {libm}"
            );
        }
    }

    #[test]
    fn edges() {
        assert_eq!(pow2(0.0), 1.0);
        assert_eq!(pow2(1.0), 2.0);
        assert!((pow10(1.0) - 10.0).abs() <= 2.0 * f64::EPSILON * 10.0);
        assert_eq!(pow2(2000.0), f64::INFINITY);
        assert_eq!(pow2(-2000.0), 0.0);
        assert!(pow2(f64::NAN).is_nan());
        assert!(pow2(1023.9).is_finite());
    }
}
