//! The cluster's page (`/console/cluster`): the leader and term, the voters and learners, and
//! each member's role, log and applied index, lag behind the leader, reachability and clock.

use maud::html;

use super::{PageResult, Visitor};
use crate::proto::v1 as pb;
use crate::proto::v1::admin_server::Admin;

/// `GET /console/cluster`.
pub async fn page(visitor: Visitor) -> PageResult {
    let request = visitor.request(pb::StatusRequest {})?;
    let s = Admin::status(&visitor.edge.api, request)
        .await?
        .into_inner();
    let banner = match s.leader_id {
        None => Some(html! {
            strong { "No leader." }
            " Node " (s.answered_by) " hears no leader in term " (s.term)
            ": writes wait until a quorum of voters elects one."
        }),
        Some(_) if s.clock_skew => Some(html! {
            strong { "Clocks disagree." }
            " A member's clock is more than " (s.max_clock_skew_ms) " ms off"
            @if !s.time_limit.is_empty() { " (" (s.time_limit) ")" } "."
        }),
        Some(_) => None,
    };
    let body = html! {
        h1 { "Cluster" }
        dl.facts {
            dt { "Leader" } dd { @match s.leader_id { Some(id) => { "node " (id) }, None => { "none" } } }
            dt { "Term" } dd { (s.term) }
            dt { "Voters" } dd { (join(&s.voters)) @if s.joint { " (changing membership)" } }
            dt { "Learners" } dd { @if s.learners.is_empty() { "none" } @else { (join(&s.learners)) } }
            dt { "Answered by" } dd { "node " (s.answered_by) }
        }
        table.nodes {
            thead { tr {
                th.num { "Node" } th { "Address" } th { "Role" } th { "Reachable" } th.num { "Term" }
                th.num { "Last log" } th.num { "Applied" } th.num { "Matched" } th.num { "Lag (entries)" } th.num { "Clock offset" }
            } }
            tbody {
                @for n in &s.nodes {
                    tr data-node=(n.id) data-role=(n.role) data-reachable=(n.reachable) {
                        td.num { (n.id) } td { code { (n.addr) } } td { (n.role) }
                        td { @if n.reachable { "yes" } @else { strong.warning { "no" } } }
                        td.num { (n.term) } td.num { (n.last_log_index) } td.num { (n.applied_index) }
                        td.num { (opt(n.matched_index)) } td.num { (opt(n.lag)) }
                        td.num { @match n.clock_offset_ms { Some(ms) => { (ms) " ms" }, None => { "—" } } }
                    }
                }
            }
        }
        @if s.nodes.iter().all(|n| n.matched_index.is_none()) {
            p { "Matched index and lag are the leader's view; open this page on the leader to see them." }
        }
    };
    Ok(visitor.page("Cluster", banner, body))
}

fn join(ids: &[u64]) -> String {
    ids.iter()
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| v.to_string())
}
