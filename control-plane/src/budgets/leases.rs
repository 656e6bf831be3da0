//! How a global budget is shared between regions without them talking to
//! each other: each region holds a *lease*, the most its data planes may
//! admit there this period. A region's lease keeps one grain (a twentieth
//! of the limit) of headroom above what it has used, drawn from what no
//! region holds yet; leases never shrink within a period (a region cut off
//! may already have spent its lease), and together never exceed the limit.
//! So the whole admits at most the limit, and a region cut off from the
//! control plane serves within its lease and no more. The price: up to one
//! grain per region may sit unused in quiet regions.

use std::collections::BTreeMap;

/// The share of the limit granted at a time.
pub const GRAINS: f64 = aigw_proto::model::budget::LEASE_GRAINS;

/// New leases for one limit: `leases` (current, by region) grown where a
/// region's headroom (lease − used) fell below a grain, as far as the limit
/// allows. Returns the regions whose lease changed.
pub fn grow(
    limit: f64,
    used: &BTreeMap<String, f64>,
    leases: &mut BTreeMap<String, f64>,
    regions: &[String],
) -> Vec<String> {
    if !(limit.is_finite() && limit > 0.0) {
        return Vec::new();
    }
    let grain = limit / GRAINS;
    let mut free = (limit - leases.values().sum::<f64>()).max(0.0);
    let mut changed = Vec::new();
    for r in regions {
        let cur = leases.get(r).copied().unwrap_or(0.0);
        let u = used.get(r).copied().unwrap_or(0.0);
        // Below half a grain of headroom, top it up to a full grain (in
        // halves or more: a new snapshot for crumbs is not worth it).
        if cur > 0.0 && cur - u >= grain * 0.5 {
            continue;
        }
        let want = (u + grain).max(cur);
        let grant = (want - cur).min(free);
        if grant > 0.0 {
            leases.insert(r.clone(), cur + grant);
            free -= grant;
            changed.push(r.clone());
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(v: &[(&str, f64)]) -> BTreeMap<String, f64> {
        v.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn leases_follow_use_and_never_exceed_the_limit() {
        let regions = vec!["eu".to_string(), "us".to_string()];
        let mut leases = BTreeMap::new();
        // First grant: a grain each.
        grow(100.0, &map(&[]), &mut leases, &regions);
        assert_eq!(leases, map(&[("eu", 5.0), ("us", 5.0)]));
        // eu uses its lease: it gets another grain, us keeps its own.
        grow(100.0, &map(&[("eu", 5.0)]), &mut leases, &regions);
        assert_eq!(leases, map(&[("eu", 10.0), ("us", 5.0)]));
        // eu keeps going: the limit is shared, never exceeded.
        for used in (10..200).step_by(5) {
            grow(
                100.0,
                &map(&[("eu", used.min(95) as f64)]),
                &mut leases,
                &regions,
            );
            assert!(leases.values().sum::<f64>() <= 100.0 + 1e-9, "{leases:?}");
        }
        assert_eq!(leases, map(&[("eu", 95.0), ("us", 5.0)]));
        // Leases never shrink.
        grow(100.0, &map(&[]), &mut leases, &regions);
        assert_eq!(leases, map(&[("eu", 95.0), ("us", 5.0)]));
    }

    #[test]
    fn a_new_region_gets_what_is_left() {
        let mut leases = map(&[("eu", 98.0)]);
        let regions = vec!["eu".to_string(), "us".to_string()];
        let changed = grow(100.0, &map(&[("eu", 50.0)]), &mut leases, &regions);
        assert_eq!(changed, vec!["us".to_string()]);
        assert_eq!(leases["us"], 2.0);
    }
}
