//! `tesoro check`: evaluate the office's rules (stored with `tesoro policy import`, or a file
//! given with --rules) and exit non-zero when one is broken.

use std::path::PathBuf;

use anyhow::Context;
use tesoro_core::policy::{parse_rules, Rule};
use tesoro_core::EntityCode;
use tesoro_store::{PolicyCheck, Store};

use crate::cmd::holdings::resolve_at;
use crate::output;
use crate::Globals;

/// `tesoro check`
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// A policy file to check instead of the stored rules (`[[rule]]` tables: no-sale,
    /// cap-per-address, exposed-public-key, outflow, silent-wallet, no-net-accumulation,
    /// unknown-counterparty; see docs/policies.md).
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Only the rules of this entity and the entities below it.
    #[arg(long)]
    entity: Option<String>,
    /// Check at a past height or date instead of the tip.
    #[arg(long)]
    at: Option<String>,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

/// The rules to use: a file when given, else the stored ones.
pub async fn load_rules(store: &Store, file: Option<&PathBuf>) -> anyhow::Result<Vec<Rule>> {
    match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the policy file {}", path.display()))?;
            Ok(parse_rules(&path.display().to_string(), &text)?)
        }
        None => {
            let rules = store.policy_rules().await?;
            if rules.is_empty() && store.policy_set().await?.is_none() {
                anyhow::bail!(
                    "no rules are stored: import a policy file with `tesoro policy import policies.toml`, or pass --rules FILE"
                );
            }
            Ok(rules)
        }
    }
}

/// Evaluates `rules` at the tip (or `at`), for `entity` and below when given.
pub async fn evaluate(
    store: &Store,
    rules: &[Rule],
    at: Option<&str>,
    entity: Option<&str>,
) -> anyhow::Result<PolicyCheck> {
    let block = resolve_at(store, at).await?;
    let only = entity.map(EntityCode::parse).transpose()?;
    Ok(store.check_policies(rules, &block, only.as_ref()).await?)
}

/// Prints violations as an aligned table.
pub fn print_violations(out: &PolicyCheck) {
    let rows = out
        .violations
        .iter()
        .map(|v| {
            vec![
                v.entity.clone(),
                v.rule.clone(),
                v.since_height.to_string(),
                v.since.clone(),
                v.message.clone(),
            ]
        })
        .collect();
    println!(
        "{}",
        output::table(
            &["entity", "rule", "since height", "since", "what"],
            rows,
            &[2]
        )
    );
}

pub async fn run(a: CheckArgs, g: &Globals) -> anyhow::Result<()> {
    let store = g.open_store().await?;
    let rules = load_rules(&store, a.rules.as_ref()).await?;
    let out = evaluate(&store, &rules, a.at.as_deref(), a.entity.as_deref()).await;
    store.close().await;
    let out = out?;
    if a.json {
        output::json(&out)?;
    } else {
        println!(
            "{} rules checked at height {} ({})",
            out.rules, out.height, out.hash
        );
        if out.ok {
            println!("no rule is broken");
        } else {
            print_violations(&out);
        }
    }
    if !out.ok {
        anyhow::bail!("{} rule violations", out.violations.len());
    }
    Ok(())
}
