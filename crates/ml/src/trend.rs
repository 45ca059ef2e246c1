//! Trend of a time series (e.g. net sentiment per week): least-squares slope and direction.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Rising,
    Falling,
    Flat,
}

impl Direction {
    /// The serialised name: "rising", "falling" or "flat".
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rising => "rising",
            Self::Falling => "falling",
            Self::Flat => "flat",
        }
    }
}

/// Least-squares slope of y over x (0.0 for fewer than 2 points or zero x-variance).
///
/// Pairs beyond the shorter slice are ignored. Sums are taken about the means, which keeps the result
/// accurate when x is a large offset such as a Unix timestamp or week number.
pub fn slope(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len().min(y.len());
    if n < 2 {
        return 0.0;
    }
    let (x, y) = (&x[..n], &y[..n]);
    let mean_x = x.iter().sum::<f64>() / n as f64;
    let mean_y = y.iter().sum::<f64>() / n as f64;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (&xi, &yi) in x.iter().zip(y) {
        let dx = xi - mean_x;
        sxy += dx * (yi - mean_y);
        sxx += dx * dx;
    }
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

/// Rising when slope > flat_band, falling when slope < -flat_band, else flat.
///
/// A NaN slope is flat: no evidence of a trend either way.
pub fn direction(slope: f64, flat_band: f64) -> Direction {
    let band = flat_band.abs();
    if slope > band {
        Direction::Rising
    } else if slope < -band {
        Direction::Falling
    } else {
        Direction::Flat
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;

    #[test]
    fn slope_of_exact_line() {
        // y = 3 - 2x
        let x = [0.0, 1.0, 2.0, 3.0];
        let y = [3.0, 1.0, -1.0, -3.0];
        assert_abs_diff_eq!(slope(&x, &y), -2.0, epsilon = 1e-12);
    }

    #[test]
    fn slope_least_squares_by_hand() {
        // x = 1,2,3 (mean 2), y = 1,3,2 (mean 2): sxy = (-1)(-1) + 0 + (1)(0) = 1, sxx = 2 -> 0.5
        assert_abs_diff_eq!(slope(&[1.0, 2.0, 3.0], &[1.0, 3.0, 2.0]), 0.5, epsilon = 1e-12);
    }

    #[test]
    fn slope_with_large_x_offset() {
        let x: Vec<f64> = (0..52).map(|w| 1.7e9 + 604_800.0 * w as f64).collect();
        let y: Vec<f64> = x.iter().map(|&t| 0.5 + 1e-6 * (t - 1.7e9)).collect();
        assert_abs_diff_eq!(slope(&x, &y), 1e-6, epsilon = 1e-12);
    }

    #[test]
    fn slope_degenerate_inputs_are_zero() {
        assert_eq!(slope(&[], &[]), 0.0);
        assert_eq!(slope(&[1.0], &[5.0]), 0.0);
        assert_eq!(slope(&[2.0, 2.0, 2.0], &[1.0, 5.0, 9.0]), 0.0);
    }

    #[test]
    fn direction_respects_band() {
        assert_eq!(direction(0.2, 0.1), Direction::Rising);
        assert_eq!(direction(-0.2, 0.1), Direction::Falling);
        assert_eq!(direction(0.1, 0.1), Direction::Flat);
        assert_eq!(direction(-0.05, 0.1), Direction::Flat);
        assert_eq!(direction(f64::NAN, 0.1), Direction::Flat);
        assert_eq!(direction(0.2, -0.1), Direction::Rising);
    }
}
