//! The gates page (`/`): every gate with its cohorts' exposure and status, its kill switch and
//! last decision; what waits for a person (awaiting approval, manual review) on top; filtered
//! and sorted by the query (`q`, `status`, `sort`), which a plain form sets.

use std::cmp::Ordering;

use axum::extract::RawQuery;
use maud::{html, Markup};

use super::{read, show, PageResult, Visitor};
use crate::engine::policy::CohortStatus;
use crate::http::error::HttpError;
use crate::http::routes::params;
use crate::proto::v1 as pb;
use crate::proto::v1::gates_server::Gates;

/// Every status a cohort may be in, for the filter.
const STATUSES: [CohortStatus; 7] = [
    CohortStatus::Ramping,
    CohortStatus::Slowed,
    CohortStatus::Held,
    CohortStatus::AwaitingApproval,
    CohortStatus::ManualReview,
    CohortStatus::RolledBack,
    CohortStatus::Complete,
];

/// How the list is ordered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sort {
    Name,
    /// Most recent decision first.
    Recent,
    /// Lowest exposure first.
    Exposure,
}

const SORTS: [(Sort, &str, &str); 3] = [
    (Sort::Name, "name", "name"),
    (Sort::Recent, "recent", "latest decision first"),
    (Sort::Exposure, "exposure", "lowest exposure first"),
];

/// What the query asks for.
struct Query {
    text: String,
    status: Option<String>,
    sort: Sort,
}

fn query(raw: Option<&str>) -> Result<Query, HttpError> {
    let p = params(raw, &["q", "status", "sort"])?;
    let status = match p.get("status").map(String::as_str) {
        None | Some("") => None,
        Some("needs_human") => Some("needs_human".to_owned()),
        Some(s) if STATUSES.iter().any(|x| x.as_str() == s) => Some(s.to_owned()),
        Some(s) => {
            return Err(HttpError::invalid(
                "status",
                format!("`{s}` is not a cohort status"),
            ))
        }
    };
    let sort = match p.get("sort").map(String::as_str) {
        None | Some("") => Sort::Name,
        Some(s) => SORTS
            .iter()
            .find(|(_, name, _)| *name == s)
            .map(|x| x.0)
            .ok_or_else(|| {
                HttpError::invalid("sort", format!("`{s}`: expected name, recent or exposure"))
            })?,
    };
    Ok(Query {
        text: p.get("q").map(|s| s.trim().to_owned()).unwrap_or_default(),
        status,
        sort,
    })
}

fn needs_human(g: &pb::GateState) -> bool {
    g.cohorts.iter().any(|c| show::needs_human(&c.status))
}

fn wanted(g: &pb::GateState, q: &Query) -> bool {
    let text = q.text.to_lowercase();
    (text.is_empty() || g.gate.to_lowercase().contains(&text))
        && match q.status.as_deref() {
            None => true,
            Some("needs_human") => needs_human(g),
            Some(s) => g.cohorts.iter().any(|c| c.status == s),
        }
}

fn last_at(g: &pb::GateState) -> i64 {
    g.last_decision
        .as_ref()
        .and_then(|d| show::ms(d.at.as_ref()))
        .unwrap_or(i64::MIN)
}

fn lowest_exposure(g: &pb::GateState) -> f64 {
    g.cohorts
        .iter()
        .map(|c| c.exposure)
        .fold(f64::INFINITY, f64::min)
}

fn order(a: &pb::GateState, b: &pb::GateState, sort: Sort) -> Ordering {
    let by = match sort {
        Sort::Name => Ordering::Equal,
        Sort::Recent => last_at(b).cmp(&last_at(a)),
        Sort::Exposure => lowest_exposure(a).total_cmp(&lowest_exposure(b)),
    };
    by.then_with(|| a.gate.cmp(&b.gate))
}

/// `GET /`: the gates.
pub async fn page(visitor: Visitor, RawQuery(raw): RawQuery) -> PageResult {
    let q = query(raw.as_deref())?;
    let read = read(|consistency| {
        let visitor = &visitor;
        async move {
            let request = visitor.request(pb::ListGatesRequest { consistency })?;
            Ok(Gates::list_gates(&visitor.edge.api, request)
                .await?
                .into_inner())
        }
    })
    .await?;
    let mut gates: Vec<pb::GateState> = read.value.gates;
    gates.retain(|g| !g.deleted);
    let total = gates.len();
    let kills = gates.iter().filter(|g| g.kill_switch).count();
    let waiting = gates.iter().filter(|g| needs_human(g)).count();
    gates.retain(|g| wanted(g, &q));
    gates.sort_by(|a, b| order(a, b, q.sort));
    let (human, rest): (Vec<&pb::GateState>, Vec<&pb::GateState>) =
        gates.iter().partition(|g| needs_human(g));
    let now = crate::node::wall_clock_ms();
    let body = html! {
        h1 { "Gates" }
        p.summary data-events="/console/events" {
            (total) " gates · " strong { (waiting) " need a person" } " · " (kills) " with the kill switch on"
        }
        (filter_form(&q))
        @if !human.is_empty() {
            section.needs-human {
                h2 { "Waiting for a person" }
                (table(&human, now))
            }
        }
        section {
            h2 { @if human.is_empty() { "All gates" } @else { "The others" } }
            @if rest.is_empty() && human.is_empty() {
                p { "No gate matches. Put a contract: " code { "rampart contract put <file.yaml>" } "." }
            } @else {
                (table(&rest, now))
            }
        }
    };
    let banner = read.banner;
    Ok(visitor.page("Gates", banner, body))
}

fn filter_form(q: &Query) -> Markup {
    html! {
        form.filter method="get" action="/" {
            label { "Gate " input type="search" name="q" value=(q.text) placeholder="name contains"; }
            label { "Status "
                select name="status" {
                    option value="" selected[q.status.is_none()] { "any" }
                    option value="needs_human" selected[q.status.as_deref() == Some("needs_human")] { "needs a person" }
                    @for s in STATUSES {
                        option value=(s.as_str()) selected[q.status.as_deref() == Some(s.as_str())] { (s.as_str().replace('_', " ")) }
                    }
                }
            }
            label { "Sort "
                select name="sort" {
                    @for (sort, name, label) in SORTS {
                        option value=(name) selected[q.sort == sort] { (label) }
                    }
                }
            }
            button type="submit" { "Apply" }
        }
    }
}

fn table(gates: &[&pb::GateState], now: i64) -> Markup {
    html! {
        table.gates {
            thead { tr { th { "Gate" } th { "Cohorts: exposure and status" } th { "Last decision" } th { "When" } th { "By" } th.num { "Version" } } }
            tbody {
                @for g in gates {
                    tr data-gate=(g.gate) {
                        td {
                            a href=(format!("/console/gates/{}", g.gate)) { (g.gate) }
                            " " (show::kill_switch(g.kill_switch))
                        }
                        td.cohorts {
                            @for c in &g.cohorts {
                                span.cohort {
                                    span.name { (c.cohort) } " "
                                    span.exposure { (show::exposure(c.exposure)) } " "
                                    (show::status(&c.status))
                                }
                            }
                        }
                        @match &g.last_decision {
                            Some(d) => {
                                td { a href=(format!("/console/gates/{}/decisions/{}", g.gate, d.version)) { (d.action) } }
                                td { (show::age(d.at.as_ref(), now)) }
                                td { (show::decided_by(&d.decided_by)) }
                            }
                            None => { td { "—" } td { "—" } td { "—" } }
                        }
                        td.num { (g.version) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(name: &str, statuses: &[(&str, f64)], at: i64) -> pb::GateState {
        pb::GateState {
            gate: name.into(),
            cohorts: statuses
                .iter()
                .map(|(s, e)| pb::CohortState {
                    cohort: format!("c{e}"),
                    exposure: *e,
                    status: (*s).into(),
                    ..Default::default()
                })
                .collect(),
            last_decision: Some(pb::Decision {
                at: Some(crate::api::convert::timestamp(at)),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_query_filters_and_names_a_bad_value() {
        let q = query(Some("q=CHECK&status=needs_human&sort=recent")).unwrap();
        assert!(q.sort == Sort::Recent);
        let waiting = gate(
            "checkout",
            &[("ramping", 5.0), ("awaiting_approval", 25.0)],
            1,
        );
        let ramping = gate("checkout-eu", &[("ramping", 5.0)], 2);
        assert!(wanted(&waiting, &q));
        assert!(!wanted(&ramping, &q), "filtered out by status");
        let e = query(Some("status=bogus")).err().unwrap();
        assert_eq!(e.field.as_deref(), Some("status"));
        let e = query(Some("sort=size")).err().unwrap();
        assert_eq!(e.field.as_deref(), Some("sort"));
    }

    #[test]
    fn sorts_by_recency_and_by_lowest_exposure() {
        let a = gate("a", &[("ramping", 50.0)], 10);
        let b = gate("b", &[("ramping", 5.0)], 20);
        assert_eq!(order(&a, &b, Sort::Name), Ordering::Less);
        assert_eq!(order(&a, &b, Sort::Recent), Ordering::Greater);
        assert_eq!(order(&a, &b, Sort::Exposure), Ordering::Greater);
    }
}
