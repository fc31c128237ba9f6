//! `tesoro audit`: check the audit log's hash chain, list recent changes.

use anyhow::bail;

use crate::output;
use crate::Globals;

/// `tesoro audit …`
#[derive(Debug, clap::Subcommand)]
pub enum AuditCmd {
    /// Recompute the hash chain; name every edited, deleted or reordered row; exit non-zero
    /// when there is one.
    Verify {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The most recent changes.
    Log {
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cmd: AuditCmd, g: &Globals) -> anyhow::Result<()> {
    let store = g.open_store().await?;
    let result = match cmd {
        AuditCmd::Verify { json } => verify(&store, json).await,
        AuditCmd::Log { limit, json } => log(&store, limit, json).await,
    };
    store.close().await;
    result
}

async fn verify(store: &tesoro_store::Store, json: bool) -> anyhow::Result<()> {
    let report = store.audit_verify().await?;
    if json {
        output::json(&report)?;
    } else if report.is_intact() {
        println!(
            "audit log intact: {} rows; head #{} {}",
            report.rows, report.head_seq, report.head_hash
        );
        println!("(keep the head hash elsewhere: a later verify against it also catches rows cut off the end)");
    } else {
        let rows = report
            .problems
            .iter()
            .map(|p| vec![p.seq.to_string(), p.problem.clone()])
            .collect();
        println!("{}", output::table(&["row", "problem"], rows, &[0]));
    }
    if !report.is_intact() {
        bail!(
            "the audit log was tampered with: {} problem(s), first at row {}",
            report.problems.len(),
            report.problems.first().map_or(0, |p| p.seq)
        );
    }
    Ok(())
}

async fn log(store: &tesoro_store::Store, limit: i64, json: bool) -> anyhow::Result<()> {
    let head = store.audit_verify().await?.head_seq;
    let rows = store.audit_rows(head - limit.max(1), limit.max(1)).await?;
    if json {
        return output::json(&rows);
    }
    let table = rows
        .iter()
        .map(|r| {
            vec![
                r.seq.to_string(),
                r.at.clone(),
                r.actor.clone(),
                r.action.clone(),
                r.subject.clone(),
            ]
        })
        .collect();
    println!(
        "{}",
        output::table(&["#", "at", "actor", "action", "subject"], table, &[0])
    );
    Ok(())
}
