//! The linearizability search on generated histories: histories built around a real
//! linearization always pass; the same histories with one stale read appended never do.

use rampart_chaos::check::linearizable::{GateRegister, RegisterOp};
use rampart_chaos::wgl::{check, Timed, Verdict};
use rand::{Rng, SeedableRng};

/// Ops with linearization points 10, 20, 30, …, intervals jittered around them; installs
/// sometimes unknown (no return). The version advances between ops as the leader's own
/// decisions would. Returns the ops and the highest version a completed op saw.
fn history(seed: u64, n: u64) -> (Vec<Timed<RegisterOp>>, u64) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut version = 0u64;
    let mut seen = 0u64;
    let mut ops = Vec::new();
    for i in 0..n {
        let point = i64::try_from(i * 10 + 10).unwrap();
        version += rng.gen_range(0..2);
        let install = rng.gen_bool(0.3);
        if install {
            version += 1;
        }
        let op = if install {
            RegisterOp::Install(version)
        } else {
            RegisterOp::Read(version)
        };
        let call = point - rng.gen_range(0..25);
        let unknown = install && rng.gen_bool(0.2);
        let ret = (!unknown).then(|| point + rng.gen_range(0..25));
        if !unknown {
            seen = seen.max(version);
        }
        ops.push(Timed {
            id: i,
            call,
            ret,
            op,
        });
    }
    (ops, seen)
}

#[test]
fn histories_with_a_linearization_pass() {
    for seed in 0..300 {
        let (ops, _) = history(seed, 40);
        assert_eq!(
            check(&GateRegister, &ops, 10_000_000),
            Verdict::Linearizable,
            "seed {seed}"
        );
    }
}

#[test]
fn a_stale_read_appended_is_always_caught() {
    for seed in 0..300 {
        let (mut ops, seen) = history(seed, 40);
        if seen == 0 {
            continue;
        }
        ops.push(Timed {
            id: 999,
            call: 10_000,
            ret: Some(10_001),
            op: RegisterOp::Read(seen - 1),
        });
        let verdict = check(&GateRegister, &ops, 10_000_000);
        assert!(
            matches!(verdict, Verdict::NotLinearizable { ref stuck, .. } if stuck.contains(&999)),
            "seed {seed}: {verdict:?}"
        );
    }
}
