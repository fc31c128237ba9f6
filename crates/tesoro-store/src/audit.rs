//! The audit log: every change to the office's data (who, when, what, before and after),
//! appended in the same transaction as the change, in a hash chain.
//!
//! Each row's `hash` is SHA-256 over the previous row's hash followed by the canonical JSON
//! of the row itself (seq, time, actor, action, subject, before, after, prev_hash), and `seq`
//! runs 1, 2, 3 … without gaps. [`Store::audit_verify`] recomputes the chain and names the
//! first row that was edited, deleted or moved. Removing rows from the *end* leaves a valid
//! shorter chain; the head hash [`AuditReport::head_hash`] is what an operator writes down
//! (or publishes) to catch that.

use bitcoin::hashes::{sha256, Hash};
use serde::Serialize;
use serde_json::{json, Value};
use sqlx::{Any, AnyConnection, Row, Transaction};

use crate::{now_rfc3339, Backend, Result, Store, StoreError};

/// The hash before the first row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

// Held for the rest of the transaction on PostgreSQL so concurrent appends (several API
// instances) take turns reading the head; the value is arbitrary but fixed.
const AUDIT_LOCK_KEY: i64 = 0x7465_736f_726f_0a01;

/// One stored audit row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditRow {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Who: `user:NAME`, `token:NAME`, `cli:OS-USER` or `system`.
    pub actor: String,
    /// What kind of change, like `entity.add` or `wallet.add`.
    pub action: String,
    /// What it changed, like `entity:SV` or `wallet:SV/cold`.
    pub subject: String,
    /// State before, as JSON text (absent for additions).
    pub before: Option<String>,
    /// State after, as JSON text (absent for removals).
    pub after: Option<String>,
    /// The previous row's hash.
    pub prev_hash: String,
    /// This row's hash.
    pub hash: String,
}

/// A change to record.
#[derive(Debug, Clone, Copy)]
pub struct AuditEntry<'a> {
    /// Who made it.
    pub actor: &'a str,
    /// What kind of change (`entity.add`).
    pub action: &'a str,
    /// What it changed (`entity:SV`).
    pub subject: &'a str,
    /// State before.
    pub before: Option<&'a Value>,
    /// State after.
    pub after: Option<&'a Value>,
}

/// What is wrong with one row of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditProblem {
    /// The row's seq (or the seq that is missing).
    pub seq: i64,
    /// What was found.
    pub problem: String,
}

/// The result of checking the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// Rows checked.
    pub rows: u64,
    /// Hash of the last row (what to write down to catch truncation later).
    pub head_hash: String,
    /// Seq of the last row.
    pub head_seq: i64,
    /// Every problem found, in chain order; empty when the chain is intact.
    pub problems: Vec<AuditProblem>,
}

impl AuditReport {
    /// True when no row was edited, deleted or moved.
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The hash a row must carry, from every field but `hash` itself; the one definition used
/// to write and to verify.
pub fn audit_hash(row: &AuditRow) -> String {
    let prev_hash = row.prev_hash.as_str();
    let row = json!({
        "seq": row.seq,
        "at": row.at,
        "actor": row.actor,
        "action": row.action,
        "subject": row.subject,
        "before": row.before,
        "after": row.after,
        "prev_hash": prev_hash,
    });
    // Only strings, integers and nulls: the canonical form always exists.
    let canonical = tesoro_core::canonical::to_canonical(&row).unwrap_or_default();
    let mut data = Vec::with_capacity(prev_hash.len() + canonical.len());
    data.extend_from_slice(prev_hash.as_bytes());
    data.extend_from_slice(&canonical);
    sha256::Hash::hash(&data).to_string()
}

/// Appends `entry` to the audit log inside `tx`, the transaction that makes the change, so
/// the change and its record commit or vanish together. Call it after the change's own
/// writes: on SQLite the transaction then already holds the write lock, so the head read
/// here cannot go stale.
pub async fn audit_append(
    tx: &mut Transaction<'_, Any>,
    backend: Backend,
    entry: &AuditEntry<'_>,
) -> Result<AuditRow> {
    append_on(tx, backend, entry).await
}

async fn append_on(
    conn: &mut AnyConnection,
    backend: Backend,
    entry: &AuditEntry<'_>,
) -> Result<AuditRow> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT CAST(1 AS BIGINT) AS one FROM (SELECT pg_advisory_xact_lock($1)) l")
            .bind(AUDIT_LOCK_KEY)
            .fetch_one(&mut *conn)
            .await?;
    }
    let head = sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *conn)
        .await?;
    let (prev_seq, prev_hash) = match head {
        Some(r) => (r.try_get::<i64, _>("seq")?, r.try_get::<String, _>("hash")?),
        None => (0, GENESIS_HASH.to_string()),
    };
    let text = |v: Option<&Value>| -> Result<Option<String>> {
        v.map(|v| {
            serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("audit JSON: {e}")))
        })
        .transpose()
    };
    let before = text(entry.before)?;
    let after = text(entry.after)?;
    let mut row = AuditRow {
        seq: prev_seq + 1,
        at: now_rfc3339(),
        actor: entry.actor.to_string(),
        action: entry.action.to_string(),
        subject: entry.subject.to_string(),
        before,
        after,
        prev_hash,
        hash: String::new(),
    };
    row.hash = audit_hash(&row);
    sqlx::query(
        "INSERT INTO audit_log (seq, at, actor, action, subject, before_json, after_json, prev_hash, hash) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(row.seq)
    .bind(&row.at)
    .bind(&row.actor)
    .bind(&row.action)
    .bind(&row.subject)
    .bind(row.before.clone())
    .bind(row.after.clone())
    .bind(&row.prev_hash)
    .bind(&row.hash)
    .execute(&mut *conn)
    .await?;
    Ok(row)
}

fn audit_row(r: &sqlx::any::AnyRow) -> Result<AuditRow> {
    Ok(AuditRow {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        action: r.try_get("action")?,
        subject: r.try_get("subject")?,
        before: r.try_get("before_json")?,
        after: r.try_get("after_json")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

impl Store {
    /// Records a change on its own, for changes whose writes happened elsewhere or that
    /// have no rows of their own (a token shown once). Prefer [`audit_append`] inside the
    /// change's transaction.
    pub async fn audit_record(&self, entry: &AuditEntry<'_>) -> Result<AuditRow> {
        let mut tx = self.begin_write().await?;
        let row = append_on(&mut tx, self.backend, entry).await?;
        tx.commit().await?;
        Ok(row)
    }

    /// Audit rows with `seq > after`, oldest first, at most `limit`.
    pub async fn audit_rows(&self, after: i64, limit: i64) -> Result<Vec<AuditRow>> {
        let rows = sqlx::query(
            "SELECT seq, at, actor, action, subject, before_json, after_json, prev_hash, hash \
             FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(audit_row).collect()
    }

    /// Walks the whole chain and reports every row that was edited, deleted or moved.
    pub async fn audit_verify(&self) -> Result<AuditReport> {
        let mut report = AuditReport {
            rows: 0,
            head_hash: GENESIS_HASH.to_string(),
            head_seq: 0,
            problems: Vec::new(),
        };
        let mut expected_seq = 1i64;
        let mut prev_hash = GENESIS_HASH.to_string();
        let mut after = i64::MIN;
        loop {
            let page = self.audit_rows(after, 5000).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            for row in page {
                report.rows += 1;
                if row.seq != expected_seq {
                    let problem = if row.seq > expected_seq {
                        format!("rows {expected_seq}..{} are missing (deleted)", row.seq - 1)
                    } else {
                        format!("seq {} is out of order (expected {expected_seq})", row.seq)
                    };
                    report.problems.push(AuditProblem {
                        seq: expected_seq,
                        problem,
                    });
                }
                if row.prev_hash != prev_hash {
                    report.problems.push(AuditProblem {
                        seq: row.seq,
                        problem: "does not link to the row before it (a row before it was deleted, reordered or edited)".into(),
                    });
                }
                let recomputed = audit_hash(&row);
                if recomputed != row.hash {
                    report.problems.push(AuditProblem {
                        seq: row.seq,
                        problem: format!(
                            "content does not match its hash (edited): {} {} by {} at {}",
                            row.action, row.subject, row.actor, row.at
                        ),
                    });
                }
                expected_seq = row.seq + 1;
                prev_hash = row.hash.clone();
                report.head_hash = row.hash;
                report.head_seq = row.seq;
            }
        }
        Ok(report)
    }
}
