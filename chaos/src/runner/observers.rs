//! The drill's observers: a watcher that streams decisions across reconnections (resuming from
//! the last version seen) and a monitor that samples who leads.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart::proto::v1 as pb;
use rampart::proto::v1::admin_client::AdminClient;
use rampart::proto::v1::gates_client::GatesClient;

use super::client::{decision_record, now_us, Pool};
use super::workload::Ctx;
use crate::history::{Call, Micros, Outcome, WatchInput, WatchItem};

/// A watch stream with no event for this long is abandoned and resumed on another node.
pub const STALL: Duration = Duration::from_secs(3);

/// Where a watcher must get to before it may stop: gate → version.
pub type Targets = Arc<Mutex<Option<BTreeMap<String, u64>>>>;

fn reached(targets: &Targets, last: &BTreeMap<String, u64>) -> bool {
    let guard = targets
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    guard
        .as_ref()
        .is_some_and(|t| t.iter().all(|(g, v)| last.get(g).is_some_and(|l| l >= v)))
}

/// A watcher: streams decisions, reconnecting to the next node (resuming from the last version
/// seen) whenever the stream breaks; stops once `targets` are set and reached. Each received
/// event's time is recorded (decision latency). Returns the events' arrival times by
/// (gate, version).
pub async fn watcher(
    ctx: Ctx,
    client: u32,
    gates: Vec<String>,
    targets: Targets,
    deadline: Arc<AtomicBool>,
) {
    let mut node = ctx.pool.ids()[0];
    let mut last: BTreeMap<String, u64> = BTreeMap::new();
    loop {
        let id = ctx.rec.next_id();
        let start = now_us();
        let input = WatchInput {
            gates: gates.clone(),
            after_version: last.clone(),
        };
        let request = pb::WatchRequest {
            gates: gates.clone(),
            after_version: last.clone().into_iter().collect(),
        };
        let mut items = Vec::new();
        let mut outcome = Outcome::Unknown;
        let mut error = None;
        match GatesClient::new(ctx.pool.channel(node))
            .watch(request)
            .await
        {
            Ok(stream) => {
                let mut stream = stream.into_inner();
                let mut last_event = Instant::now();
                loop {
                    if reached(&targets, &last) {
                        outcome = Outcome::Ok;
                        break;
                    }
                    if deadline.load(Ordering::SeqCst) {
                        outcome = Outcome::Ok;
                        error = Some("gave up: targets not reached".into());
                        break;
                    }
                    let next =
                        tokio::time::timeout(Duration::from_millis(300), stream.message()).await;
                    let event = match next {
                        // Decisions come every window (2 s) per cohort: a silent stream is
                        // served by a node cut off or paused. Resume elsewhere.
                        Err(_) if last_event.elapsed() > STALL => {
                            error =
                                Some(format!("no event for {STALL:?}; resuming on another node"));
                            break;
                        }
                        Err(_) => continue,
                        Ok(Ok(Some(e))) => e,
                        Ok(Ok(None)) => {
                            error = Some("stream ended".into());
                            break;
                        }
                        Ok(Err(s)) => {
                            error = Some(s.message().to_owned());
                            break;
                        }
                    };
                    last_event = Instant::now();
                    let at = now_us();
                    match event.event {
                        Some(pb::watch_event::Event::State(s)) => {
                            last.insert(s.gate.clone(), s.version);
                            items.push(WatchItem {
                                at,
                                gate: s.gate,
                                state: true,
                                version: s.version,
                                decision: None,
                            });
                        }
                        Some(pb::watch_event::Event::Decision(d)) => {
                            let seen = last.entry(d.gate.clone()).or_default();
                            *seen = (*seen).max(d.version);
                            items.push(WatchItem {
                                at,
                                gate: d.gate.clone(),
                                state: false,
                                version: d.version,
                                decision: Some(decision_record(&d)),
                            });
                        }
                        None => {}
                    }
                }
            }
            Err(s) => error = Some(s.message().to_owned()),
        }
        let done = outcome == Outcome::Ok;
        ctx.record(
            id,
            client,
            node,
            start,
            (
                if done { Outcome::Ok } else { Outcome::Unknown },
                error,
                Call::Watch {
                    input,
                    output: items,
                },
            ),
        );
        if done {
            return;
        }
        node = ctx.pool.next_after(node);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One sample of who leads, as some node answered.
#[derive(Debug, Clone, Copy)]
pub struct LeaderSample {
    pub at: Micros,
    pub leader: Option<u64>,
    pub term: u64,
}

/// Asks every node for the cluster status; returns the leader of the highest term seen.
pub async fn find_leader(pool: &Pool) -> Option<(u64, u64)> {
    let mut best: Option<(u64, u64)> = None;
    for id in pool.ids() {
        let mut client = AdminClient::new(pool.channel(id));
        let mut request = tonic::Request::new(pb::StatusRequest {});
        request.set_timeout(Duration::from_millis(800));
        if let Ok(s) = client.status(request).await {
            let s = s.into_inner();
            if let Some(leader) = s.leader_id {
                if best.is_none_or(|(_, t)| s.term > t) {
                    best = Some((leader, s.term));
                }
            }
        }
    }
    best
}

/// Samples the leader every 250 ms until stopped.
pub async fn monitor(pool: Pool, stop: Arc<AtomicBool>, samples: Arc<Mutex<Vec<LeaderSample>>>) {
    while !stop.load(Ordering::SeqCst) {
        let found = find_leader(&pool).await;
        let sample = LeaderSample {
            at: now_us(),
            leader: found.map(|f| f.0),
            term: found.map_or(0, |f| f.1),
        };
        samples
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(sample);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
