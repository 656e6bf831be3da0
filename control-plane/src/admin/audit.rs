//! Reading the audit log (it is written by `AdminSvc::mutate`, in the
//! transaction of the change it describes).

use aigw_proto::pb::admin::{AuditEntry, AuditList, AuditQuery};

use super::page;
use crate::db::AnyConnection;
use crate::db::identity::{AuditFilter, list_audit};
use crate::error::Result;

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn non_zero(v: i64) -> Option<i64> {
    (v != 0).then_some(v)
}

pub fn filter(q: &AuditQuery) -> Result<AuditFilter> {
    Ok(AuditFilter {
        since_ms: non_zero(q.since_ms),
        until_ms: non_zero(q.until_ms),
        actor: non_empty(&q.actor),
        object_kind: non_empty(&q.object_kind),
        before: page::decode(&q.page_token)?,
        limit: page::size(q.page_size),
    })
}

pub fn list(conn: &mut AnyConnection, f: &AuditFilter) -> Result<AuditList> {
    let rows = list_audit(conn, f)?;
    let next_page_token = page::next(&rows, f.limit, |r| (r.at_ms, r.id.as_str()));
    Ok(AuditList {
        entries: rows
            .into_iter()
            .map(|r| AuditEntry {
                id: r.id,
                at_ms: r.at_ms,
                actor: r.actor,
                action: r.action,
                object_kind: r.object_kind,
                object_name: r.object_name,
                detail: r.detail,
            })
            .collect(),
        next_page_token,
    })
}
