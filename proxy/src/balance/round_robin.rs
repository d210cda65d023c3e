//! Weighted round robin as a precomputed schedule (nginx's smooth WRR
//! order), so a pick is one counter increment and one array read.

/// Longest schedule kept; larger weight sums are scaled down to fit.
const MAX_SCHEDULE: u64 = 65_536;

/// The order in which endpoints take turns; endpoints of weight 0 never
/// appear. Empty when no endpoint has a positive weight.
pub fn schedule(weights: &[u32]) -> Box<[u32]> {
    let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
    if total == 0 {
        return Box::new([]);
    }
    let divisor = weights
        .iter()
        .filter(|w| **w > 0)
        .fold(0u64, |g, w| gcd(g, u64::from(*w)));
    let mut scaled: Vec<i64> = weights
        .iter()
        .map(|w| (u64::from(*w) / divisor) as i64)
        .collect();
    let mut len: u64 = scaled.iter().map(|w| *w as u64).sum();
    if len > MAX_SCHEDULE {
        // Keep proportions roughly, but every live endpoint keeps a turn.
        for w in scaled.iter_mut().filter(|w| **w > 0) {
            *w = ((*w as u64 * MAX_SCHEDULE / len).max(1)) as i64;
        }
        len = scaled.iter().map(|w| *w as u64).sum();
    }
    let sum: i64 = len as i64;
    let mut current = vec![0i64; scaled.len()];
    let mut order = Vec::with_capacity(len as usize);
    for _ in 0..len {
        let mut best = 0;
        for i in 0..scaled.len() {
            current[i] += scaled[i];
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= sum;
        order.push(best as u32);
    }
    order.into_boxed_slice()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_weights_alternate() {
        assert_eq!(&*schedule(&[1, 1, 1]), &[0, 1, 2]);
        assert_eq!(&*schedule(&[5, 5]), &[0, 1]);
    }

    #[test]
    fn weights_are_smooth_and_proportional() {
        let s = schedule(&[5, 1, 1]);
        assert_eq!(&*s, &[0, 0, 1, 0, 2, 0, 0]);
    }

    #[test]
    fn zero_weight_is_skipped_and_all_zero_is_empty() {
        assert_eq!(&*schedule(&[0, 2]), &[1]);
        assert!(schedule(&[0, 0]).is_empty());
        assert!(schedule(&[]).is_empty());
    }

    #[test]
    fn huge_weights_are_bounded() {
        let s = schedule(&[10_000, 9_999, 1]);
        assert!(s.len() as u64 <= MAX_SCHEDULE + 3);
        assert!(s.contains(&2));
    }
}
