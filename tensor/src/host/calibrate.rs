/// Running statistics of the values a tensor takes during calibration.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeObserver {
    pub min: f64,
    pub max: f64,
    pub count: u64,
    sum: f64,
    sum_sq: f64,
}

impl Default for RangeObserver {
    fn default() -> Self {
        RangeObserver {
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            count: 0,
            sum: 0.0,
            sum_sq: 0.0,
        }
    }
}

impl RangeObserver {
    /// Adds values; NaN and infinities are ignored (they would poison the range).
    pub fn observe(&mut self, xs: &[f64]) {
        for &x in xs.iter().filter(|x| x.is_finite()) {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
            self.sum += x;
            self.sum_sq += x * x;
            self.count += 1;
        }
    }
    /// Observed `[min, max]`, or `[0, 0]` before any value.
    pub fn range(&self) -> (f64, f64) {
        if self.count == 0 {
            (0.0, 0.0)
        } else {
            (self.min, self.max)
        }
    }
    pub fn abs_max(&self) -> f64 {
        let (lo, hi) = self.range();
        lo.abs().max(hi.abs())
    }
    pub fn mean(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum / self.count as f64
        }
    }
    pub fn std_dev(&self) -> f64 {
        if self.count == 0 {
            return 0.0;
        }
        let m = self.mean();
        (self.sum_sq / self.count as f64 - m * m).max(0.0).sqrt()
    }
}
