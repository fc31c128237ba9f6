//! `tesoro alerts`: evaluate the stored rules on every new block and deliver each new
//! violation to a webhook, once.
//!
//! Delivery is at-least-once with a stable id: every violation becomes a row of the outbox
//! (keyed by the violation's id) before any attempt, and is marked delivered only after the
//! receiver answered 2xx. A crash between the receiver's 2xx and that mark means the same
//! alert (same id, same bytes, same signature) is sent again on restart; receivers drop
//! repeats by the `X-Tesoro-Alert-Id` header. See docs/policies.md.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bitcoin::hashes::{hmac, sha256, Hash, HashEngine};
use tesoro_core::policy::Violation;
use tesoro_store::{AlertRow, NewAlert, Store};

use crate::cmd::check::{evaluate, load_rules};
use crate::output;
use crate::Globals;

/// Header carrying the alert id (the receiver's deduplication key).
pub const ID_HEADER: &str = "X-Tesoro-Alert-Id";
/// Header carrying `sha256=` and the hex HMAC-SHA256 of the body under the shared secret.
pub const SIGNATURE_HEADER: &str = "X-Tesoro-Signature";
/// Header carrying the attempt number (1 for the first; not signed, informational).
pub const ATTEMPT_HEADER: &str = "X-Tesoro-Attempt";

/// `tesoro alerts …`
#[derive(Debug, clap::Subcommand)]
pub enum AlertsCmd {
    /// Evaluate the stored rules and deliver new violations to a webhook; with --follow,
    /// again on every new block (run beside `tesoro sync --follow`).
    Run(RunArgs),
    /// The outbox: every alert with its delivery state.
    List {
        /// Only alerts not delivered yet.
        #[arg(long)]
        pending: bool,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `tesoro alerts run`
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Webhook URL (https://… or http://…) that receives each alert as a JSON POST.
    #[arg(long)]
    webhook: String,
    /// File holding the shared secret for the HMAC-SHA256 signature (at least 16 bytes;
    /// surrounding whitespace ignored).
    #[arg(long)]
    secret_file: PathBuf,
    /// Keep following the store's tip (polling) until stopped.
    #[arg(long)]
    follow: bool,
    /// Seconds between polls of the tip with --follow.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    interval: f64,
    /// Only the rules of this entity and the entities below it.
    #[arg(long)]
    entity: Option<String>,
    /// First retry delay in milliseconds; doubles with every failed attempt.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    backoff_ms: u64,
    /// Longest retry delay in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECS")]
    max_backoff: u64,
    /// Without --follow: give up (exit non-zero, alerts stay pending for the next run) after
    /// this many attempts at one alert.
    #[arg(long, default_value_t = 8)]
    max_attempts: u32,
    /// Seconds to wait for the receiver's answer.
    #[arg(long, default_value_t = 10.0, value_name = "SECS")]
    timeout: f64,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// HMAC-SHA256 of `body` under `secret`, hex, as sent in [`SIGNATURE_HEADER`] after `sha256=`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut engine = hmac::HmacEngine::<sha256::Hash>::new(secret);
    engine.input(body);
    let mac = hmac::Hmac::<sha256::Hash>::from_engine(engine);
    bitcoin::hex::DisplayHex::to_lower_hex_string(&mac.to_byte_array()[..])
}

fn read_secret(path: &PathBuf) -> anyhow::Result<Vec<u8>> {
    let raw = std::fs::read(path)
        .with_context(|| format!("cannot read the webhook secret {}", path.display()))?;
    let text = String::from_utf8_lossy(&raw);
    let secret = text.trim().as_bytes().to_vec();
    if secret.len() < 16 {
        anyhow::bail!(
            "{}: the webhook secret has {} bytes; use at least 16 (e.g. `openssl rand -hex 32 > {}`)",
            path.display(),
            secret.len(),
            path.display()
        );
    }
    Ok(secret)
}

fn body_of(v: &Violation, network: &str, height: u32, hash: &str) -> anyhow::Result<String> {
    Ok(serde_json::to_string(&serde_json::json!({
        "type": "tesoro.policy.violation",
        "alert_id": v.id,
        "network": network,
        "detected_at": now_rfc3339(),
        "detected_at_height": height,
        "detected_at_hash": hash,
        "violation": v,
    }))?)
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn now_unix() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[derive(Debug, Default, serde::Serialize)]
struct Summary {
    evaluations: u64,
    new_alerts: u64,
    delivered: u64,
    failed_attempts: u64,
    pending: u64,
}

struct Sender {
    client: reqwest::Client,
    url: String,
    secret: Vec<u8>,
    backoff: Duration,
    max_backoff: Duration,
}

impl Sender {
    fn delay(&self, attempts: u32) -> Duration {
        let factor = 1u32.checked_shl(attempts.min(30)).unwrap_or(u32::MAX);
        self.backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    /// One attempt; Ok on a 2xx answer.
    async fn post(&self, a: &AlertRow) -> Result<(), String> {
        let res = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(ID_HEADER, &a.id)
            .header(
                SIGNATURE_HEADER,
                format!("sha256={}", sign(&self.secret, a.body.as_bytes())),
            )
            .header(ATTEMPT_HEADER, (a.attempts + 1).to_string())
            .body(a.body.clone())
            .send()
            .await
            .map_err(|e| {
                let mut s = e.to_string();
                let mut src = std::error::Error::source(&e);
                while let Some(c) = src {
                    s.push_str(&format!(": {c}"));
                    src = c.source();
                }
                s
            })?;
        let status = res.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered {status}"))
        }
    }
}

/// Evaluates, enqueues what is new, logs it; returns the number of new alerts.
async fn evaluate_and_enqueue(
    store: &Store,
    entity: Option<&str>,
    summary: &mut Summary,
) -> anyhow::Result<()> {
    let rules = load_rules(store, None).await?;
    let check = evaluate(store, &rules, None, entity).await?;
    summary.evaluations += 1;
    let network = store.network().name();
    let mut new = Vec::with_capacity(check.violations.len());
    for v in &check.violations {
        new.push(NewAlert {
            id: v.id.clone(),
            rule: v.rule.clone(),
            entity: v.entity.clone(),
            since_height: v.since_height,
            body: body_of(v, network, check.height, &check.hash)?,
        });
    }
    let added = store.enqueue_alerts(&new).await?;
    for id in &added {
        if let Some(v) = check.violations.iter().find(|v| &v.id == id) {
            tracing::warn!(
                alert = %v.id,
                rule = %v.rule,
                entity = %v.entity,
                since_height = v.since_height,
                "ALERT {}",
                v.message
            );
        }
    }
    summary.new_alerts += added.len() as u64;
    tracing::info!(
        height = check.height,
        violations = check.violations.len(),
        new = added.len(),
        "rules evaluated"
    );
    Ok(())
}

/// Sends the due alerts in order, stopping at the first failure (the receiver is likely
/// down; the rest wait their turn). Returns the earliest time another attempt is due.
async fn deliver_due(
    store: &Store,
    sender: &Sender,
    summary: &mut Summary,
) -> anyhow::Result<Option<i64>> {
    for a in store.pending_alerts().await? {
        if a.next_attempt_at > now_unix() {
            return Ok(Some(a.next_attempt_at));
        }
        match sender.post(&a).await {
            Ok(()) => {
                store.mark_alert_delivered(&a.id).await?;
                summary.delivered += 1;
                tracing::info!(alert = %a.id, attempt = a.attempts + 1, "alert delivered");
            }
            Err(e) => {
                let wait = sender.delay(a.attempts);
                let next = now_unix() + i64::try_from(wait.as_secs()).unwrap_or(i64::MAX / 2);
                store.mark_alert_failed(&a.id, &e, next).await?;
                summary.failed_attempts += 1;
                tracing::warn!(
                    alert = %a.id,
                    attempt = a.attempts + 1,
                    retry_in_ms = wait.as_millis() as u64,
                    "delivery failed: {e}"
                );
                tokio::time::sleep(wait).await;
                return Ok(Some(now_unix()));
            }
        }
    }
    Ok(None)
}

async fn run_loop(a: &RunArgs, store: &Store, sender: &Sender) -> anyhow::Result<Summary> {
    let mut summary = Summary::default();
    let interval = Duration::from_secs_f64(a.interval.max(0.05));
    let mut last_tip: Option<String> = None;
    loop {
        let tip = store.chain_tip().await?;
        let tip_hash = tip.as_ref().map(|b| b.hash.to_string());
        if tip_hash.is_some() && tip_hash != last_tip {
            evaluate_and_enqueue(store, a.entity.as_deref(), &mut summary).await?;
            last_tip = tip_hash;
        } else if tip.is_none() && !a.follow {
            anyhow::bail!("the chain index is empty: run `tesoro sync --source …` first");
        }
        let next = deliver_due(store, sender, &mut summary).await?;
        if !a.follow {
            let pending = store.pending_alerts().await?;
            if pending.is_empty() {
                return Ok(summary);
            }
            if let Some(p) = pending.iter().find(|p| p.attempts >= a.max_attempts) {
                anyhow::bail!(
                    "alert {} was not delivered after {} attempts (last error: {}); {} alerts stay pending for the next run",
                    p.id,
                    p.attempts,
                    p.last_error.as_deref().unwrap_or("none"),
                    pending.len()
                );
            }
            if next.is_none_or(|t| t > now_unix()) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            continue;
        }
        tokio::time::sleep(interval).await;
    }
}

pub async fn run(c: AlertsCmd, g: &Globals) -> anyhow::Result<()> {
    match c {
        AlertsCmd::List { pending, json } => {
            let store = g.open_store().await?;
            let rows = if pending {
                store.pending_alerts().await
            } else {
                store.alerts().await
            };
            store.close().await;
            let rows = rows?;
            if json {
                output::json(&rows)?;
            } else {
                let table = rows
                    .iter()
                    .map(|r| {
                        vec![
                            r.seq.to_string(),
                            r.id[..16].to_string(),
                            r.entity.clone(),
                            r.rule.clone(),
                            r.since_height.to_string(),
                            r.attempts.to_string(),
                            r.delivered_at
                                .clone()
                                .unwrap_or_else(|| "pending".to_string()),
                            r.last_error.clone().unwrap_or_default(),
                        ]
                    })
                    .collect();
                println!(
                    "{}",
                    output::table(
                        &[
                            "#",
                            "alert",
                            "entity",
                            "rule",
                            "since height",
                            "attempts",
                            "delivered",
                            "last error"
                        ],
                        table,
                        &[0, 4, 5]
                    )
                );
            }
            Ok(())
        }
        AlertsCmd::Run(a) => {
            if !(a.webhook.starts_with("https://") || a.webhook.starts_with("http://")) {
                anyhow::bail!("--webhook {:?}: give an http:// or https:// URL", a.webhook);
            }
            let secret = read_secret(&a.secret_file)?;
            // reqwest is built without a default crypto provider (STACK.md): install ring's
            // before the first client, or building it panics. A second install is harmless.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs_f64(a.timeout.max(0.1)))
                .user_agent(concat!("tesoro/", env!("CARGO_PKG_VERSION")))
                .build()
                .context("cannot set up the HTTP client")?;
            let sender = Sender {
                client,
                url: a.webhook.clone(),
                secret,
                backoff: Duration::from_millis(a.backoff_ms.max(1)),
                max_backoff: Duration::from_secs(a.max_backoff.max(1)),
            };
            let store = g.open_store().await?;
            if a.follow {
                tracing::info!(webhook = %a.webhook, "following the store's tip; Ctrl-C stops");
            }
            let result = tokio::select! {
                r = run_loop(&a, &store, &sender) => r,
                _ = tokio::signal::ctrl_c() => Ok(Summary::default()),
            };
            let pending = store.pending_alerts().await.map(|p| p.len() as u64);
            store.close().await;
            let mut summary = result?;
            summary.pending = pending?;
            if a.json {
                output::json(&summary)?;
            } else {
                output::fields(vec![
                    ("evaluations", summary.evaluations.to_string()),
                    ("new alerts", summary.new_alerts.to_string()),
                    ("delivered", summary.delivered.to_string()),
                    ("failed attempts", summary.failed_attempts.to_string()),
                    ("pending", summary.pending.to_string()),
                ]);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    /// RFC 4231 test case 2.
    #[test]
    fn hmac_sha256_matches_rfc4231() {
        assert_eq!(
            super::sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
