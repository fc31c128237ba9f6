//! `tesoro check`: evaluate the office's rules (policies.toml) and exit non-zero when one is
//! broken.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use anyhow::Context;
use tesoro_core::policy::{
    evaluate, parse_rules, AddressEvent, AddressHistory, Disposal, Violation,
};
use tesoro_core::wallet::script_address;
use tesoro_core::EntityCode;

use crate::cmd::holdings::resolve_at;
use crate::output;
use crate::Globals;

/// `tesoro check`
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Policy file (`[[rule]]` tables: no-sale, cap-per-address, exposed-public-key, outflow,
    /// silent-wallet).
    #[arg(long, default_value = "policies.toml")]
    rules: PathBuf,
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

#[derive(serde::Serialize)]
struct CheckOut {
    height: u32,
    hash: String,
    rules: usize,
    ok: bool,
    violations: Vec<Violation>,
}

pub async fn run(a: CheckArgs, g: &Globals) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&a.rules).with_context(|| {
        format!(
            "cannot read {} (write rules there, or pass --rules FILE)",
            a.rules.display()
        )
    })?;
    let rules = parse_rules(&a.rules.display().to_string(), &text)?;
    let store = g.open_store().await?;
    let block = resolve_at(&store, a.at.as_deref()).await?;
    let network = store.network().0;
    let only: Option<BTreeSet<EntityCode>> = match &a.entity {
        Some(c) => Some(
            store
                .entity_subtree(&EntityCode::parse(c)?)
                .await?
                .into_iter()
                .collect(),
        ),
        None => None,
    };
    let entities = store.entities().await?;
    let entity_id: HashMap<String, i64> = entities
        .iter()
        .map(|e| (e.code.to_string(), e.id))
        .collect();
    let times = store.block_times().await?;
    let outputs = store.all_outputs().await?;
    let movements = store.derive_ledger_movements().await?;
    let mut violations = Vec::new();
    let mut checked = 0;
    for rule in &rules {
        let code = EntityCode::parse(rule.entity()).with_context(|| {
            format!("{}: rule for entity {:?}", a.rules.display(), rule.entity())
        })?;
        if only.as_ref().is_some_and(|o| !o.contains(&code)) {
            continue;
        }
        checked += 1;
        let subtree: BTreeSet<EntityCode> = store
            .entity_subtree(&code)
            .await
            .with_context(|| format!("{}: rule {}", a.rules.display(), rule.name()))?
            .into_iter()
            .collect();
        let wallets = store.wallets(Some(&code)).await?;
        let wallet_name: HashMap<i64, String> =
            wallets.iter().map(|w| (w.id, w.full_name())).collect();
        let mut by_script: HashMap<Vec<u8>, AddressHistory> = HashMap::new();
        for o in outputs.iter().filter(|o| o.height <= block.height) {
            let Some(wname) = wallet_name.get(&o.wallet_id) else {
                continue;
            };
            let h = by_script
                .entry(o.script_pubkey.to_bytes())
                .or_insert_with(|| AddressHistory {
                    address: script_address(&o.script_pubkey, network)
                        .map(|x| x.to_string())
                        .unwrap_or_else(|| format!("script:{}", o.script_pubkey.to_hex_string())),
                    wallet: wname.clone(),
                    key_in_script: o.script_pubkey.is_p2tr() || o.script_pubkey.is_p2pk(),
                    events: Vec::new(),
                });
            h.events.push(AddressEvent {
                height: o.height,
                time: times.get(&o.height).copied().unwrap_or(0),
                txid: o.outpoint.txid.to_string(),
                delta: o.value.to_sat() as i64,
            });
            if let Some((txid, sh)) = o.spent.filter(|(_, sh)| *sh <= block.height) {
                h.events.push(AddressEvent {
                    height: sh,
                    time: times.get(&sh).copied().unwrap_or(0),
                    txid: txid.to_string(),
                    delta: -(o.value.to_sat() as i64),
                });
            }
        }
        let mut histories: Vec<AddressHistory> = by_script.into_values().collect();
        for h in &mut histories {
            // Within a block, deposits before spends (a block can fund and spend an address).
            h.events
                .sort_by_key(|e| (e.height, std::cmp::Reverse(e.delta)));
        }
        histories.sort_by(|x, y| x.address.cmp(&y.address));
        let ids: BTreeSet<i64> = subtree
            .iter()
            .filter_map(|c| entity_id.get(c.as_str()).copied())
            .collect();
        // A transaction's disposal is counted once even when several agencies paid into it.
        let mut seen = BTreeSet::new();
        let disposals: Vec<Disposal> = movements
            .iter()
            .filter(|m| ids.contains(&m.entity) && m.height <= block.height && m.disposed > 0)
            .filter(|m| seen.insert(m.txid))
            .map(|m| Disposal {
                txid: m.txid.to_string(),
                height: m.height,
                time: m.time,
                sats: m.disposed,
                to: m.counterparties.clone(),
            })
            .collect();
        violations.extend(evaluate(rule, &histories, &disposals, block.time));
    }
    store.close().await;
    let out = CheckOut {
        height: block.height,
        hash: block.hash.to_string(),
        rules: checked,
        ok: violations.is_empty(),
        violations,
    };
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
            let rows = out
                .violations
                .iter()
                .map(|v| {
                    vec![
                        v.entity.clone(),
                        v.rule.clone(),
                        v.since_height.to_string(),
                        v.message.clone(),
                    ]
                })
                .collect();
            println!(
                "{}",
                output::table(&["entity", "rule", "since height", "what"], rows, &[2])
            );
        }
    }
    if !out.ok {
        anyhow::bail!("{} rule violations", out.violations.len());
    }
    Ok(())
}
