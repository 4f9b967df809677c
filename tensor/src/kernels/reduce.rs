use crate::Quantized;

/// Largest element, `None` for an empty slice.
pub fn max<T: Quantized + Ord>(x: &[T]) -> Option<T> {
    x.iter().copied().max()
}

/// Index of the largest element; ties go to the lowest index (ONNX ArgMax,
/// `select_last_index = 0`). `None` for an empty slice.
pub fn argmax<T: Quantized + Ord>(x: &[T]) -> Option<usize> {
    let mut best = 0usize;
    let mut best_v = *x.first()?;
    for (i, &v) in x.iter().enumerate().skip(1) {
        if v > best_v {
            best = i;
            best_v = v;
        }
    }
    Some(best)
}
