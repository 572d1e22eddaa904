//! What a visitor does rather than reads: the actions on a gate (hold, resume, approve, roll
//! back, kill, set exposure), each with a reason and the form's CSRF token, written through the
//! same `Override` call as the API's; signing in with a bearer token and out.

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};

use super::session::{Session, CSRF_FIELD};
use super::{show, PageError, PageResult, Visitor};
use crate::http::call::Segment;
use crate::http::error::HttpError;
use crate::proto::v1 as pb;
use crate::proto::v1::overrides_server::Overrides;

/// The actions a form may ask for: the button's value, its label, the override it is.
const KINDS: [(&str, &str, pb::OverrideKind); 6] = [
    ("hold", "Hold", pb::OverrideKind::Hold),
    ("resume", "Resume", pb::OverrideKind::Resume),
    (
        "approve",
        "Approve the next stage",
        pb::OverrideKind::Approve,
    ),
    ("rollback", "Roll back", pb::OverrideKind::Rollback),
    ("kill", "Kill switch on", pb::OverrideKind::Kill),
    (
        "set_exposure",
        "Set exposure",
        pb::OverrideKind::SetExposure,
    ),
];

/// A posted form's fields; a field sent twice is refused rather than one copy dropped.
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8], known: &[&str]) -> Result<Form, HttpError> {
        let mut fields: Vec<(String, String)> = Vec::new();
        for (name, value) in form_urlencoded::parse(body) {
            if !known.contains(&name.as_ref()) {
                return Err(HttpError::invalid(
                    name.as_ref(),
                    format!(
                        "is not a field of this form (expected {})",
                        known.join(", ")
                    ),
                ));
            }
            if fields.iter().any(|(n, _)| *n == name) {
                return Err(HttpError::invalid(name.as_ref(), "is given more than once"));
            }
            fields.push((name.into_owned(), value.into_owned()));
        }
        Ok(Form(fields))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str, what: &str) -> Result<&str, HttpError> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| HttpError::invalid(name, format!("is required: {what}")))
    }
}

/// The action form of a gate's page (only drawn for a visitor who may override).
pub fn form(visitor: &Visitor, g: &pb::GateState) -> Markup {
    let named = visitor
        .caller()
        .filter(|c| c.authenticated)
        .map(|c| c.name.clone());
    html! {
        section.actions {
            h2 { "Act on this gate" }
            form.act method="post" action=(format!("/console/gates/{}/actions", g.gate)) {
                input type="hidden" name=(CSRF_FIELD) value=(visitor.csrf());
                label { "Cohort "
                    select name="cohort" {
                        option value="" { "every cohort" }
                        @for c in &g.cohorts { option value=(c.cohort) { (c.cohort) " (" (show::exposure(c.exposure)) ", " (c.status) ")" } }
                    }
                }
                label { "Exposure for “set exposure” (%) "
                    input type="number" name="exposure" min="0" max="100" step="any" inputmode="decimal";
                }
                @match &named {
                    Some(name) => { p.actor { "Recorded as " strong { (name) } "." } }
                    None => { label { "Your name " input type="text" name="actor" required autocomplete="name"; } }
                }
                label.reason { "Reason (recorded with the decision) "
                    textarea name="reason" required rows="2" placeholder="why, for whoever reads the audit trail" {}
                }
                div.buttons {
                    @for (value, label, _) in KINDS {
                        button type="submit" name="kind" value=(value)
                            data-confirm=[(value == "kill").then_some("Turn the kill switch on? Every unit gets the fallback variant.")] {
                            (label)
                        }
                    }
                }
            }
        }
    }
}

/// `POST /console/gates/{gate}/actions`: the override the form asks for, then back to the gate.
pub async fn act(visitor: Visitor, Segment(gate): Segment, body: Bytes) -> PageResult {
    let form = Form::parse(
        &body,
        &[CSRF_FIELD, "kind", "cohort", "exposure", "actor", "reason"],
    )?;
    visitor.check_csrf(form.get(CSRF_FIELD))?;
    let kind = form.required("kind", "which action")?;
    let kind = KINDS
        .iter()
        .find(|(v, _, _)| *v == kind)
        .map(|k| k.2)
        .ok_or_else(|| {
            HttpError::invalid(
                "kind",
                format!("`{kind}`: expected hold, resume, approve, rollback, kill or set_exposure"),
            )
        })?;
    let exposure = match (kind, form.get("exposure").map(str::trim)) {
        (pb::OverrideKind::SetExposure, None | Some("")) => {
            return Err(HttpError::invalid("exposure", "is required to set the exposure").into())
        }
        (pb::OverrideKind::SetExposure, Some(v)) => v
            .parse::<f64>()
            .map_err(|_| HttpError::invalid("exposure", format!("`{v}` is not a number")))?,
        _ => 0.0,
    };
    let reason = form
        .required("reason", "why, for the audit trail")?
        .to_owned();
    let actor = match visitor.caller() {
        Some(c) if c.authenticated => c.name.clone(),
        _ => form.required("actor", "who is acting")?.to_owned(),
    };
    let request = visitor.request(pb::OverrideRequest {
        gate: gate.clone(),
        cohort: form.get("cohort").unwrap_or_default().trim().to_owned(),
        kind: kind as i32,
        exposure,
        actor,
        reason,
    })?;
    let decision = Overrides::r#override(&visitor.edge.api, request)
        .await?
        .into_inner();
    Ok(see_other(
        &format!("/console/gates/{gate}?done={}", decision.version),
        None,
    ))
}

/// A 303 to `to`, setting `cookie` if given.
fn see_other(to: &str, cookie: Option<HeaderValue>) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(to) {
        headers.insert(header::LOCATION, location);
    }
    if let Some(cookie) = cookie {
        headers.insert(header::SET_COOKIE, cookie);
    }
    (StatusCode::SEE_OTHER, headers).into_response()
}

/// `GET /console/sign-in`.
pub async fn sign_in_page(visitor: Visitor) -> PageResult {
    let body = html! {
        h1 { "Sign in" }
        p { "Paste a bearer token from the cluster's access file. The console keeps it in an HttpOnly cookie for this site only." }
        form.sign-in method="post" action="/console/sign-in" {
            input type="hidden" name=(CSRF_FIELD) value=(visitor.csrf());
            label { "Token " input type="password" name="token" required autocomplete="current-password"; }
            button type="submit" { "Sign in" }
        }
    };
    Ok(visitor.page("Sign in", None, body))
}

/// `POST /console/sign-in`: a token the node accepts becomes the session.
pub async fn sign_in(visitor: Visitor, body: Bytes) -> PageResult {
    let form = Form::parse(&body, &[CSRF_FIELD, "token"])?;
    visitor.check_csrf(form.get(CSRF_FIELD))?;
    let token = form.required("token", "a bearer token")?;
    let mut headers = HeaderMap::new();
    let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| HttpError::invalid("token", "is not printable ASCII"))?;
    headers.insert(header::AUTHORIZATION, bearer);
    let request = visitor
        .edge
        .request(&headers, visitor.peer, ())
        .map_err(PageError)?;
    let accepted = request
        .extensions()
        .get::<crate::auth::Caller>()
        .is_some_and(|c| c.authenticated);
    if !accepted {
        return Err(HttpError::invalid(
            "token",
            "this node has no access file, so there is nothing to sign in to",
        )
        .into());
    }
    let session = Session::signed_in(token);
    Ok(see_other("/", Some(session.set_cookie(visitor.secure()))))
}

/// `POST /console/sign-out`.
pub async fn sign_out(visitor: Visitor, body: Bytes) -> PageResult {
    let form = Form::parse(&body, &[CSRF_FIELD])?;
    visitor.check_csrf(form.get(CSRF_FIELD))?;
    Ok(see_other(
        "/",
        Some(Session::clear_cookie(visitor.secure())),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_names_an_unknown_or_repeated_field() {
        let f = Form::parse(b"kind=hold&reason=+slow+", &["kind", "reason"]).unwrap();
        assert_eq!(f.required("reason", "why").unwrap(), "slow");
        let e = Form::parse(b"kind=hold&kind=kill", &["kind"])
            .err()
            .unwrap();
        assert_eq!(e.field.as_deref(), Some("kind"));
        let e = Form::parse(b"gate=x", &["kind"]).err().unwrap();
        assert_eq!(e.field.as_deref(), Some("gate"));
        let f = Form::parse(b"reason=++", &["reason"]).unwrap();
        let e = f.required("reason", "why").err().unwrap();
        assert_eq!(e.field.as_deref(), Some("reason"));
    }
}
