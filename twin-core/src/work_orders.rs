//! Work orders: a maintenance, calibration or inspection job on one unit — who asked for it,
//! why, by when — closed by the person who did it with an electronic signature.
//!
//! The audit trail is their store, as it is for settings: creating and closing a work order
//! are audit records, and the book is the fold of those records, oldest first. A restart
//! rebuilds it by reading the trail again, and no second store can disagree with the record.
//! The fold only reads what the records hold; the web layer decides who may write them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Audit action of a created work order.
pub const CREATED: &str = "workorder.create";
/// Audit action of a closed work order (shared with closing a maintenance alert by a work
/// order: the target tells them apart).
pub const CLOSED: &str = "workorder.close";
/// Audit target prefix of a work order: `work-order/<id>`.
pub const TARGET: &str = "work-order/";

/// What a work order is for; maintenance renews a part and resets the unit's
/// since-maintenance counters on closing unless the order says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkKind {
    Maintenance,
    Calibration,
    Inspection,
}

/// A work order as requested: the details of its `workorder.create` record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkRequest {
    pub id: String,
    pub site: String,
    pub line: String,
    pub equipment: String,
    pub part: Option<String>,
    pub kind: WorkKind,
    pub reason: String,
    pub due: DateTime<Utc>,
    /// Closing it records a maintenance action that resets the since-maintenance counters.
    pub reset_counters: bool,
    /// The predictive-maintenance alert it answers, if any.
    pub alert: Option<u64>,
}

/// Who closed a work order, when, and the signature's printed line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkDone {
    pub by: String,
    pub at: DateTime<Utc>,
    pub comment: String,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkOrder {
    #[serde(flatten)]
    pub request: WorkRequest,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub closed: Option<WorkDone>,
}

impl WorkOrder {
    /// `open`, `overdue` (open past its due time) or `closed`.
    pub fn state(&self, now: DateTime<Utc>) -> &'static str {
        match &self.closed {
            Some(_) => "closed",
            None if now > self.request.due => "overdue",
            None => "open",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WorkOrderError {
    #[error("no work order `{0}`")]
    Unknown(String),
    #[error("work order `{0}` is already closed")]
    Closed(String),
}

/// Every work order, in the order they were created.
#[derive(Debug, Clone, Default)]
pub struct WorkOrders {
    list: Vec<WorkOrder>,
}

impl WorkOrders {
    /// Folds one audit record in; records of other actions or targets are passed over, and so
    /// is one whose details do not parse (an older format is no reason to lose the rest).
    pub fn apply(
        &mut self,
        action: &str,
        target: &str,
        user: &str,
        at: DateTime<Utc>,
        details: &serde_json::Value,
    ) {
        let Some(id) = target.strip_prefix(TARGET) else {
            return;
        };
        match action {
            CREATED => match WorkRequest::deserialize(details) {
                Ok(request) if request.id == id && self.get(id).is_none() => {
                    self.list.push(WorkOrder {
                        request,
                        requested_by: user.to_string(),
                        created_at: at,
                        closed: None,
                    })
                }
                Ok(_) => tracing::warn!(target, "work order created twice or under another id"),
                Err(e) => tracing::warn!(target, error = %e, "work order record not understood"),
            },
            CLOSED => match WorkDone::deserialize(&details["done"]) {
                Ok(done) => {
                    if let Some(w) = self.list.iter_mut().find(|w| w.request.id == id) {
                        w.closed.get_or_insert(done);
                    }
                }
                Err(e) => tracing::warn!(target, error = %e, "work order record not understood"),
            },
            _ => {}
        }
    }

    pub fn get(&self, id: &str) -> Option<&WorkOrder> {
        self.list.iter().find(|w| w.request.id == id)
    }

    pub fn all(&self) -> &[WorkOrder] {
        &self.list
    }

    /// The id the next work order gets: `WO-<n>`, one past the highest so far.
    pub fn next_id(&self) -> String {
        let n = self
            .list
            .iter()
            .filter_map(|w| w.request.id.strip_prefix("WO-")?.parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        format!("WO-{:05}", n + 1)
    }

    /// Whether `id` may be closed now: it exists and is open.
    pub fn closable(&self, id: &str) -> Result<&WorkOrder, WorkOrderError> {
        match self.get(id) {
            None => Err(WorkOrderError::Unknown(id.to_string())),
            Some(w) if w.closed.is_some() => Err(WorkOrderError::Closed(id.to_string())),
            Some(w) => Ok(w),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn t(h: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + h * 3600, 0).unwrap()
    }

    fn request(id: &str) -> serde_json::Value {
        json!({
            "id": id, "site": "anhui", "line": "line-1", "equipment": "press-01",
            "part": "bearing", "kind": "maintenance", "reason": "vibration rising",
            "due": t(24), "reset_counters": true, "alert": null,
        })
    }

    #[test]
    fn the_book_is_the_fold_of_its_audit_records() {
        let mut book = WorkOrders::default();
        assert_eq!(book.next_id(), "WO-00001");
        book.apply(
            CREATED,
            "work-order/WO-00001",
            "maint.anhui",
            t(0),
            &request("WO-00001"),
        );
        book.apply(
            CREATED,
            "work-order/WO-00002",
            "maint.anhui",
            t(1),
            &request("WO-00002"),
        );
        // Another action on the same kind of target, and a closed alert: not work orders.
        book.apply(
            "config.change",
            "work-order/WO-00001",
            "admin",
            t(1),
            &json!({}),
        );
        book.apply(
            CLOSED,
            "maintenance-alert/7",
            "maint.anhui",
            t(2),
            &json!({}),
        );
        assert_eq!(book.all().len(), 2);
        assert_eq!(book.next_id(), "WO-00003");
        let w = book.get("WO-00001").unwrap();
        assert_eq!(
            (w.requested_by.as_str(), w.request.kind),
            ("maint.anhui", WorkKind::Maintenance)
        );
        assert_eq!(w.state(t(2)), "open");
        assert_eq!(w.state(t(25)), "overdue", "open past its due time");

        let done = json!({ "done": { "by": "maint.anhui", "at": t(3), "comment": "bearing renewed",
            "signature": "Printed maint.anhui (performed) 2023-11-14" } });
        book.apply(CLOSED, "work-order/WO-00001", "maint.anhui", t(3), &done);
        assert_eq!(book.get("WO-00001").unwrap().state(t(25)), "closed");
        assert_eq!(
            book.closable("WO-00001").unwrap_err(),
            WorkOrderError::Closed("WO-00001".into())
        );
        assert_eq!(
            book.closable("WO-00009").unwrap_err(),
            WorkOrderError::Unknown("WO-00009".into())
        );
        assert!(book.closable("WO-00002").is_ok());
        // A second creation under a known id changes nothing.
        let mut other = request("WO-00002");
        other["reason"] = json!("replaced");
        book.apply(CREATED, "work-order/WO-00002", "admin", t(4), &other);
        assert_eq!(
            book.get("WO-00002").unwrap().request.reason,
            "vibration rising"
        );
    }
}
