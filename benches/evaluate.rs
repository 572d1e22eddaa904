//! In-node hot path: `Evaluate` without the network (state read lock, gate lookup, sticky
//! bucketing). Run: `cargo bench --bench evaluate`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use rampart::engine::Contract;
use rampart::ids::{CohortName, GateKey};
use rampart::state::{Command, Request, State};

fn evaluate(c: &mut Criterion) {
    let contract =
        Contract::from_yaml(include_str!("../examples/checkout-v2.yaml")).expect("contract");
    let mut state = State::default();
    state.apply(&Request {
        at: 1_763_719_200_000,
        command: Command::PutContract {
            contract: Box::new(contract),
        },
    });
    let lock = std::sync::RwLock::new(state);
    let gate = GateKey::try_from("checkout-v2").expect("gate");
    let cohort = CohortName::try_from("mobile").expect("cohort");
    let mut i = 0u64;
    c.bench_function("evaluate_in_node", |b| {
        b.iter(|| {
            i += 1;
            let unit = format!("user-{i}");
            let state = lock.read().expect("lock");
            let g = state.live_gate(black_box(&gate)).expect("gate");
            black_box(g.assign(&cohort, &unit).map(|a| a.treatment))
        })
    });
}

criterion_group!(benches, evaluate);
criterion_main!(benches);
