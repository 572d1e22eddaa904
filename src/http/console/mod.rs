//! The operator console: server-rendered pages at `/` and under `/console/` on every node's
//! HTTP listener. Gates (what needs a human on top), a gate (its ladder, exposure over time,
//! treatment against baseline per window, decisions, contract), a decision with its evidence,
//! the cluster; actions (hold, resume, approve, roll back, kill, set exposure) with a reason,
//! shown only to a role that may take them; live updates through Server-Sent Events fed by the
//! decision stream `Watch` reads.
//!
//! Every page reads through the same `rampart.v1` handlers as the JSON API, as the signed-in
//! caller ([`session`]): roles, validation and forwarding to the leader stay the gRPC edge's.
//! Reads are linearizable; when the node cannot reach a leader the page shows the node's own
//! state under a banner saying so. Charts are SVG drawn here ([`chart`]); the stylesheet and
//! the little JavaScript are compiled into the binary.
//!
//! This module never touches storage and never decides anything.

mod actions;
mod backtest;
mod chart;
mod cluster;
mod decision;
mod events;
mod gate;
mod gates;
mod session;
mod show;

use std::net::SocketAddr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup, DOCTYPE};

use super::error::HttpError;
use super::Edge;
use crate::auth::{Caller, Role};
use crate::proto::v1 as pb;
pub use session::CsrfKey;
use session::Session;

/// The console's routes.
pub fn routes() -> Router<Edge> {
    Router::new()
        .route("/", get(gates::page))
        .route("/console/gates/:gate", get(gate::page))
        .route("/console/gates/:gate/actions", post(actions::act))
        .route(
            "/console/gates/:gate/decisions/:version",
            get(decision::page),
        )
        .route("/console/cluster", get(cluster::page))
        .route("/console/backtest", get(backtest::page).post(backtest::run))
        .route(
            "/console/sign-in",
            get(actions::sign_in_page).post(actions::sign_in),
        )
        .route("/console/sign-out", post(actions::sign_out))
        .route("/console/events", get(events::subscribe))
        .route("/console/assets/console.css", get(stylesheet))
        .route("/console/assets/console.js", get(script))
}

/// Someone using the console: the node, their session, and their request's headers with the
/// session's token as `Authorization`.
pub struct Visitor {
    pub edge: Edge,
    pub session: Session,
    headers: HeaderMap,
    peer: SocketAddr,
    /// Who the node takes the visitor for, authenticated once per request (None: refused).
    caller: Option<Caller>,
}

#[axum::async_trait]
impl FromRequestParts<Edge> for Visitor {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, edge: &Edge) -> Result<Self, PageError> {
        let peer = super::call::peer(parts);
        let session = Session::of(&parts.headers);
        let headers = session.authorized(&parts.headers);
        let caller = edge
            .request(&headers, peer, ())
            .ok()
            .and_then(|r| r.extensions().get::<Caller>().cloned());
        Ok(Visitor {
            edge: edge.clone(),
            headers,
            session,
            peer,
            caller,
        })
    }
}

impl Visitor {
    /// `message` as an authenticated call from this visitor.
    pub fn request<T>(&self, message: T) -> Result<tonic::Request<T>, HttpError> {
        self.edge.request(&self.headers, self.peer, message)
    }

    /// Who this visitor is to the node, if their session's token (or none) is accepted.
    pub fn caller(&self) -> Option<&Caller> {
        self.caller.as_ref()
    }

    /// Whether pages are served over TLS (the session cookie is then `Secure`).
    fn secure(&self) -> bool {
        self.edge.node.config.tls.is_some()
    }

    /// The page's frame: navigation, who is signed in, the banner, then `body`.
    pub fn page(&self, title: &str, banner: Option<Markup>, body: Markup) -> Response {
        self.page_with(StatusCode::OK, title, banner, body)
    }

    /// [`Visitor::page`] answered with `status` (a form shown again with its error).
    pub fn page_with(
        &self,
        status: StatusCode,
        title: &str,
        banner: Option<Markup>,
        body: Markup,
    ) -> Response {
        let caller = self.caller();
        let csrf = self.csrf();
        let node = self.edge.node.id;
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · rampart" }
                    link rel="stylesheet" href="/console/assets/console.css";
                    script src="/console/assets/console.js" defer {}
                }
                body {
                    header.top {
                        a.brand href="/" { "rampart" }
                        nav {
                            a href="/" { "Gates" }
                            a href="/console/cluster" { "Cluster" }
                            a href="/console/backtest" { "Backtest" }
                        }
                        span.who {
                            "node " (node) " · "
                            @match caller {
                                Some(c) if c.authenticated => {
                                    (c.name) " (" (c.role.as_str()) ") "
                                    form.inline method="post" action="/console/sign-out" {
                                        input type="hidden" name="csrf" value=(csrf);
                                        button.link type="submit" { "sign out" }
                                    }
                                }
                                Some(c) => { "no access file: everyone is " (c.role.as_str()) }
                                None => { a href="/console/sign-in" { "sign in" } }
                            }
                        }
                    }
                    main #main {
                        @if let Some(banner) = banner {
                            div.banner role="alert" { (banner) }
                        }
                        (body)
                        p.live #live aria-live="polite" {}
                    }
                    (chart::markers())
                }
            }
        };
        self.respond(status, markup)
    }

    /// `markup` with the status, and the session cookie when it is new.
    fn respond(&self, status: StatusCode, markup: Markup) -> Response {
        let mut response = (status, markup).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.session.fresh {
            headers.insert(header::SET_COOKIE, self.session.set_cookie(self.secure()));
        }
        response
    }

    /// Whether the visitor may act as `role` (actions are shown only then).
    pub fn may(&self, role: Role) -> bool {
        self.caller().is_some_and(|c| c.role >= role)
    }

    /// The CSRF token of this visitor's forms.
    pub fn csrf(&self) -> String {
        self.session.csrf(&self.edge.csrf)
    }

    /// Refuses a posted form without this session's CSRF token.
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), HttpError> {
        self.session.check_csrf(&self.edge.csrf, presented)
    }
}

/// A read of the state: linearizable, or, when this node cannot reach a leader, its own
/// state under a banner saying how old it is.
pub struct Read<T> {
    pub value: T,
    pub banner: Option<Markup>,
}

/// Reads with `call(consistency)`: linearizable first; the node's own state when that is
/// unavailable (no leader).
pub async fn read<T, F, Fut>(call: F) -> Result<Read<T>, HttpError>
where
    F: Fn(i32) -> Fut,
    Fut: std::future::Future<Output = Result<T, HttpError>>,
{
    match call(pb::Consistency::Linearizable as i32).await {
        Ok(value) => Ok(Read {
            value,
            banner: None,
        }),
        Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => {
            let value = call(pb::Consistency::Local as i32).await?;
            Ok(Read {
                value,
                banner: Some(html! {
                    strong { "This node cannot reach a leader." }
                    " What you see is its own copy of the state, which may be behind: "
                    (e.message)
                }),
            })
        }
        Err(e) => Err(e),
    }
}

/// How old a local read is: when the answering node last applied a change (nothing for a
/// linearizable read, or one applied in the last 5 s).
pub fn lag_banner(read: Option<&pb::ReadInfo>) -> Option<Markup> {
    let read = read?;
    (read.consistency == pb::Consistency::Local as i32 && read.age_ms > 5_000).then(|| {
        html! {
            "Node " (read.node_id) " last applied a change "
            (show::duration_ms(read.age_ms)) " ago (index " (read.applied_index) ")."
        }
    })
}

/// A failed page: the error's status, its message and field, and a way on (signing in when
/// the node wants a token).
pub struct PageError(pub HttpError);

impl From<HttpError> for PageError {
    fn from(e: HttpError) -> Self {
        PageError(e)
    }
}

impl From<tonic::Status> for PageError {
    fn from(s: tonic::Status) -> Self {
        PageError(s.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.0;
        let markup = html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    title { "Error · rampart" }
                    link rel="stylesheet" href="/console/assets/console.css";
                }
                body {
                    header.top { a.brand href="/" { "rampart" } }
                    main #main {
                        h1 { (e.status.as_u16()) " " (e.status.canonical_reason().unwrap_or("")) }
                        p.error data-code=(e.code) data-field=[e.field.as_deref()] { (e.message) }
                        @if e.status == StatusCode::UNAUTHORIZED || e.status == StatusCode::FORBIDDEN {
                            p { a href="/console/sign-in" { "Sign in with a token" } " that may do this." }
                        }
                        p { a href="/" { "Back to the gates" } }
                    }
                }
            }
        };
        let mut response = (e.status, markup).into_response();
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// The result of a page handler.
pub type PageResult = Result<Response, PageError>;

async fn stylesheet() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("assets/console.css"),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    )
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}
