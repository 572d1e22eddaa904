//! Live updates (`GET /console/events`, `?gate=` for one gate): Server-Sent Events fed by the
//! same applied-decision broadcast `Watch` reads. Each event names a decision (`decision`, data
//! `{"gate", "version", "action", "changed"}`); a page fetches itself again on one (the gates
//! page only on one that changed something, not on every window judged quietly). A subscriber that falls
//! behind the broadcast gets `refresh` (the page re-reads everything), never a silent gap.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::RawQuery;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::Stream;
use tokio::sync::{broadcast, watch};

use super::{PageResult, Visitor};
use crate::http::routes::params;
use crate::ids::GateKey;
use crate::state::Decision;

/// What one event stream follows.
struct Feed {
    decisions: broadcast::Receiver<Arc<Decision>>,
    shutdown: watch::Receiver<bool>,
    gate: Option<GateKey>,
}

/// The next event for the feed, or None when the node stops.
async fn next(mut feed: Feed) -> Option<(Result<Event, Infallible>, Feed)> {
    loop {
        if *feed.shutdown.borrow() {
            return None;
        }
        let received = tokio::select! {
            changed = feed.shutdown.changed() => {
                if changed.is_err() { return None; }
                continue;
            }
            received = feed.decisions.recv() => received,
        };
        let event = match received {
            Ok(d) if feed.gate.as_ref().is_some_and(|g| *g != d.gate) => continue,
            Ok(d) => Event::default().event("decision").data(
                serde_json::json!({
                    "gate": d.gate.as_str(),
                    "version": d.version,
                    "action": d.action.label(),
                    "changed": d.changed_something(),
                })
                .to_string(),
            ),
            Err(broadcast::error::RecvError::Lagged(_)) => {
                Event::default().event("refresh").data("{}")
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        return Some((Ok(event), feed));
    }
}

fn stream(feed: Feed) -> impl Stream<Item = Result<Event, Infallible>> {
    futures::stream::unfold(feed, next)
}

/// `GET /console/events`: for whoever may read gates.
pub async fn subscribe(visitor: Visitor, RawQuery(raw): RawQuery) -> PageResult {
    visitor.request(())?;
    let p = params(raw.as_deref(), &["gate"])?;
    let gate = match p.get("gate").map(String::as_str) {
        None | Some("") => None,
        Some(g) => Some(
            GateKey::try_from(g)
                .map_err(|e| crate::http::error::HttpError::invalid("gate", e.to_string()))?,
        ),
    };
    let node = &visitor.edge.node;
    let feed = Feed {
        decisions: node.state.subscribe(),
        shutdown: node.shutdown_signal(),
        gate,
    };
    let sse = Sse::new(stream(feed)).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)));
    let response: Response = sse.into_response();
    Ok(response)
}
