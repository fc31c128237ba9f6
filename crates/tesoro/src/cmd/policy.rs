//! `tesoro policy`: the office's rules, kept in the database (every imported file is kept;
//! the newest is in force).

use std::path::PathBuf;

use anyhow::Context;
use tesoro_core::policy::parse_rules;

use crate::output;
use crate::Globals;

/// `tesoro policy …`
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCmd {
    /// Check a policy file and store it as the rules in force.
    Import {
        /// The policy file (TOML, `[[rule]]` tables; see docs/policies.md).
        file: PathBuf,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// The rules in force.
    Show {
        /// Every policy file imported, oldest first, instead.
        #[arg(long)]
        history: bool,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(c: PolicyCmd, g: &Globals) -> anyhow::Result<()> {
    match c {
        PolicyCmd::Import { file, json } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read the policy file {}", file.display()))?;
            let name = file.display().to_string();
            // Checked before anything is written: a bad file stores nothing.
            let rules = parse_rules(&name, &text)?;
            let store = g.open_store().await?;
            for (i, rule) in rules.iter().enumerate() {
                let known = match tesoro_core::EntityCode::parse(rule.entity()) {
                    Ok(code) => store.entity(&code).await.is_ok(),
                    Err(_) => false,
                };
                if !known {
                    store.close().await;
                    anyhow::bail!(
                        "{name}: rule {} ({}): entity {:?} is not registered (add it with `tesoro entity add`, or fix the file); nothing was stored",
                        i + 1,
                        rule.kind(),
                        rule.entity()
                    );
                }
            }
            let r = store.import_policy(&name, &text).await;
            store.close().await;
            let r = r?;
            if json {
                output::json(&r)?;
            } else if r.changed {
                println!(
                    "{} rules from {name} are now in force (policy #{})",
                    r.rules, r.id
                );
            } else {
                println!(
                    "{name} is already in force (policy #{}); nothing changed",
                    r.id
                );
            }
        }
        PolicyCmd::Show { history, json } => {
            let store = g.open_store().await?;
            let sets = if history {
                store.policy_history().await
            } else {
                store.policy_set().await.map(|s| s.into_iter().collect())
            };
            let rules = store.policy_rules().await;
            store.close().await;
            let sets = sets?;
            if history {
                if json {
                    output::json(&sets)?;
                } else {
                    let rows = sets
                        .iter()
                        .map(|s| {
                            vec![
                                s.id.to_string(),
                                s.imported_at.clone(),
                                s.source.clone(),
                                s.sha256[..16].to_string(),
                            ]
                        })
                        .collect();
                    println!(
                        "{}",
                        output::table(&["policy", "imported", "source", "sha256"], rows, &[0])
                    );
                }
                return Ok(());
            }
            let Some(set) = sets.into_iter().next() else {
                anyhow::bail!("no rules are stored: `tesoro policy import policies.toml`");
            };
            let rules = rules?;
            if json {
                output::json(&serde_json::json!({
                    "policy": set.id,
                    "source": set.source,
                    "imported_at": set.imported_at,
                    "sha256": set.sha256,
                    "rules": rules,
                }))?;
            } else {
                println!(
                    "policy #{} from {} imported {} (sha256 {})",
                    set.id, set.source, set.imported_at, set.sha256
                );
                let rows = rules
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        vec![
                            (i + 1).to_string(),
                            r.entity().to_string(),
                            r.kind().to_string(),
                            r.params(),
                        ]
                    })
                    .collect();
                println!(
                    "{}",
                    output::table(&["#", "entity", "rule", "parameters"], rows, &[0])
                );
            }
        }
    }
    Ok(())
}
