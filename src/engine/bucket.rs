//! Deterministic, sticky bucketing of units (users, sessions) into a gate's exposure.
//!
//! A unit falls in one of 10,000 buckets per gate, from a hash of (gate, unit) that is fixed
//! forever (FNV-1a 64 with a murmur3 finaliser: stable across platforms and releases, unlike
//! std's `DefaultHasher`). A unit is exposed when its bucket is below the exposure in basis
//! points, so raising exposure only adds buckets: whoever saw the feature keeps seeing it.

/// Buckets per gate.
pub const BUCKETS: u32 = 10_000;

/// The bucket of `unit` in `gate`, in `0..BUCKETS`.
pub fn bucket(gate: &str, unit: &str) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in gate
        .bytes()
        .chain(std::iter::once(0xff))
        .chain(unit.bytes())
    {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // murmur3 fmix64: spreads FNV's weak low bits.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^= hash >> 33;
    u32::try_from(hash % u64::from(BUCKETS)).unwrap_or(0)
}

/// Whether a unit in `bucket` is exposed at `exposure_pct` percent.
pub fn exposed(bucket: u32, exposure_pct: f64) -> bool {
    let limit = (exposure_pct.clamp(0.0, 100.0) * 100.0).round();
    f64::from(bucket) < limit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucketing_is_stable_and_sticky() {
        // Fixed forever: a change here moves real users between variants.
        assert_eq!(
            bucket("checkout-v2", "user-1"),
            bucket("checkout-v2", "user-1")
        );
        let b = bucket("checkout-v2", "user-42");
        let stages = [1.0, 5.0, 10.0, 25.0, 50.0, 100.0];
        let first_on = stages.iter().position(|s| exposed(b, *s)).unwrap();
        assert!(
            stages[first_on..].iter().all(|s| exposed(b, *s)),
            "exposure must only add buckets"
        );
        assert!(!exposed(b, 0.0));
    }

    #[test]
    fn buckets_spread_evenly() {
        let on = (0..20_000)
            .filter(|i| exposed(bucket("g", &format!("u{i}")), 10.0))
            .count();
        assert!(
            (1_700..2_300).contains(&on),
            "10% of 20k should be near 2000, got {on}"
        );
    }
}
