//! The alert outbox: every violation ever seen, once, with its delivery state.
//!
//! An alert's id is the violation's id (a hash of rule, entity, start and the evidence that
//! started it), so re-evaluating the same chain adds nothing, across restarts too. The body
//! is fixed when the alert is first seen, so every retry sends the same bytes (and the same
//! signature). A row is marked delivered only after the receiver answered 2xx.

use serde::Serialize;
use sqlx::Row;

use crate::{now_rfc3339, Result, Store, StoreError};

/// An alert to add to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    /// The violation's id.
    pub id: String,
    /// Rule name.
    pub rule: String,
    /// Entity code.
    pub entity: String,
    /// Height the violation started.
    pub since_height: u32,
    /// The JSON body to deliver.
    pub body: String,
}

/// An alert in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertRow {
    /// The violation's id.
    pub id: String,
    /// Order of first sight.
    pub seq: i64,
    /// Rule name.
    pub rule: String,
    /// Entity code.
    pub entity: String,
    /// Height the violation started.
    pub since_height: u32,
    /// The JSON body delivered.
    pub body: String,
    /// When it was first seen (RFC 3339).
    pub created_at: String,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Unix time before which no new attempt is made.
    pub next_attempt_at: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When the receiver acknowledged it (RFC 3339); `None` while pending.
    pub delivered_at: Option<String>,
}

const COLUMNS: &str = "id, seq, rule, entity, since_height, body, created_at, attempts, \
                       next_attempt_at, last_error, delivered_at";

fn alert_row(r: &sqlx::any::AnyRow) -> Result<AlertRow> {
    let h: i64 = r.try_get("since_height")?;
    let attempts: i64 = r.try_get("attempts")?;
    Ok(AlertRow {
        id: r.try_get("id")?,
        seq: r.try_get("seq")?,
        rule: r.try_get("rule")?,
        entity: r.try_get("entity")?,
        since_height: u32::try_from(h)
            .map_err(|_| StoreError::Corrupt(format!("alert since_height {h}")))?,
        body: r.try_get("body")?,
        created_at: r.try_get("created_at")?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

impl Store {
    /// Adds the alerts not in the outbox yet, in one transaction; returns the ids added, in
    /// the order given. Alerts already there (delivered or not) are left as they are.
    pub async fn enqueue_alerts(&self, alerts: &[NewAlert]) -> Result<Vec<String>> {
        let mut tx = self.begin_write().await?;
        let mut added = Vec::new();
        for a in alerts {
            let exists = sqlx::query("SELECT id FROM alerts WHERE id = $1")
                .bind(&a.id)
                .fetch_optional(&mut *tx)
                .await?;
            if exists.is_some() {
                continue;
            }
            let seq: i64 =
                sqlx::query("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) AS s FROM alerts")
                    .fetch_one(&mut *tx)
                    .await?
                    .try_get("s")?;
            sqlx::query(
                "INSERT INTO alerts (id, seq, rule, entity, since_height, body, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&a.id)
            .bind(seq + 1)
            .bind(&a.rule)
            .bind(&a.entity)
            .bind(i64::from(a.since_height))
            .bind(&a.body)
            .bind(now_rfc3339())
            .execute(&mut *tx)
            .await?;
            added.push(a.id.clone());
        }
        tx.commit().await?;
        Ok(added)
    }

    /// Alerts not delivered yet, oldest first.
    pub async fn pending_alerts(&self) -> Result<Vec<AlertRow>> {
        let sql = format!("SELECT {COLUMNS} FROM alerts WHERE delivered_at IS NULL ORDER BY seq");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(alert_row)
            .collect()
    }

    /// Every alert, oldest first.
    pub async fn alerts(&self) -> Result<Vec<AlertRow>> {
        let sql = format!("SELECT {COLUMNS} FROM alerts ORDER BY seq");
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(alert_row)
            .collect()
    }

    /// Records a 2xx answer: the alert is delivered and never sent again.
    pub async fn mark_alert_delivered(&self, id: &str) -> Result<()> {
        sqlx::query(
            "UPDATE alerts SET attempts = attempts + 1, last_error = NULL, delivered_at = $2 \
             WHERE id = $1 AND delivered_at IS NULL",
        )
        .bind(id)
        .bind(now_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Records a failed attempt and when to try again (Unix time).
    pub async fn mark_alert_failed(
        &self,
        id: &str,
        error: &str,
        next_attempt_at: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE alerts SET attempts = attempts + 1, last_error = $2, next_attempt_at = $3 \
             WHERE id = $1 AND delivered_at IS NULL",
        )
        .bind(id)
        .bind(error)
        .bind(next_attempt_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
