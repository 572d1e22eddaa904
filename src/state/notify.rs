//! Replicated delivery cursors of a gate's webhooks: which decisions each receiver still
//! has to hear about. The leader delivers (`crate::notify`) and then writes `Notified`; a new
//! leader resumes from the cursor, so every wanted decision is delivered at least once (a
//! delivery acknowledged just before a leader died is sent again, with the same delivery id).
//!
//! Pure and deterministic, like the rest of `state`.

use super::command::{OverrideKind, StateError};
use super::gate::{Action, Decision, Gate};
use crate::engine::notify::{Notify, NotifyOn};
use crate::engine::{Contract, Verdict};

impl Decision {
    /// The events this decision is: its action, and `kill` when it turned the kill switch on.
    pub fn events(&self) -> Vec<NotifyOn> {
        let primary = match self.action {
            Action::Engine(v) => match v {
                Verdict::Expand => NotifyOn::Expand,
                Verdict::Stay => NotifyOn::Stay,
                Verdict::Slow => NotifyOn::Slow,
                Verdict::Hold => NotifyOn::Hold,
                Verdict::AwaitApproval => NotifyOn::AwaitApproval,
                Verdict::ManualReview => NotifyOn::ManualReview,
                Verdict::Rollback | Verdict::RollbackGate => NotifyOn::Rollback,
            },
            Action::Override(k) => match k {
                OverrideKind::Hold => NotifyOn::Hold,
                OverrideKind::Resume => NotifyOn::Resume,
                OverrideKind::Approve => NotifyOn::Approve,
                OverrideKind::Rollback => NotifyOn::Rollback,
                OverrideKind::Kill => NotifyOn::Kill,
                OverrideKind::SetExposure(_) => NotifyOn::SetExposure,
            },
            Action::Contract => NotifyOn::Contract,
            Action::Deleted => NotifyOn::Deleted,
        };
        let mut events = vec![primary];
        if self.kill_switch && !self.kill_switch_before && primary != NotifyOn::Kill {
            events.push(NotifyOn::Kill);
        }
        events
    }

    /// The delivery id receivers dedupe on: `gate:version`.
    pub fn delivery_id(&self) -> String {
        format!("{}:{}", self.gate, self.version)
    }
}

impl Gate {
    /// The webhook of the contract with this URL.
    pub fn receiver(&self, url: &str) -> Option<&Notify> {
        self.contract.notify.iter().find(|h| h.url == url)
    }

    /// The oldest decision after the receiver's cursor that it wants, if any.
    pub fn next_delivery(&self, url: &str) -> Option<&Decision> {
        let hook = self.receiver(url)?;
        let cursor = *self.notified.get(url)?;
        let from = self.decisions.partition_point(|d| d.version <= cursor);
        self.decisions[from..]
            .iter()
            .find(|d| hook.wants(&d.events()))
    }

    /// Moves the receiver's cursor to `version` (never back). Refused for a URL the contract
    /// does not name (it was removed since the delivery began) or a version not yet decided.
    pub fn notified(&mut self, url: &str, version: u64) -> Result<u64, StateError> {
        if version > self.version {
            return Err(StateError::Invalid {
                field: "version".into(),
                reason: format!("gate {} is at version {}", self.key, self.version),
            });
        }
        let Some(cursor) = self.notified.get_mut(url) else {
            return Err(StateError::Invalid {
                field: "url".into(),
                reason: format!("gate {} has no webhook {url}", self.key),
            });
        };
        *cursor = (*cursor).max(version);
        Ok(*cursor)
    }

    /// Called with a new contract before it is applied: a receiver it adds starts after the
    /// current version (so it hears about the contract decision about to be recorded and what
    /// follows, not the gate's history); one it keeps keeps its cursor; one it drops is
    /// forgotten.
    pub(super) fn sync_receivers(&mut self, contract: &Contract) {
        let version = self.version;
        self.notified
            .retain(|url, _| contract.notify.iter().any(|h| &h.url == url));
        for hook in &contract.notify {
            self.notified.entry(hook.url.clone()).or_insert(version);
        }
    }
}
