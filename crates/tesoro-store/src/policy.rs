//! The office's rules in the database, and their evaluation over the stored ledger.
//!
//! Policy files are kept whole and append-only (`policy_sets`): the newest is in force, the
//! older ones say what was in force before. [`Store::check_policies`] gathers what
//! [`tesoro_core::policy::evaluate`] needs for each rule's entity subtree (address histories,
//! classified movements, disposals with their payees) at a block, and returns the violations.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bitcoin::consensus::Decodable;
use bitcoin::hashes::{sha256, Hash};
use serde::Serialize;
use sqlx::Row;
use tesoro_core::chain::BlockMeta;
use tesoro_core::classify::{MatchTolerance, RulesFile};
use tesoro_core::movement::Movement;
use tesoro_core::policy::{
    evaluate, parse_rules, AddressEvent, AddressHistory, Disposal, Flow, Inputs, Payee, Rule,
    Violation,
};
use tesoro_core::wallet::script_address;
use tesoro_core::EntityCode;

use crate::{now_rfc3339, Result, Store, StoreError};

/// A stored policy file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicySet {
    /// Row id (increases with every import).
    pub id: i64,
    /// SHA-256 of the text, hex.
    pub sha256: String,
    /// Where it came from (the file name given to `policy import`).
    pub source: String,
    /// When it was imported (RFC 3339).
    pub imported_at: String,
    /// The file's text.
    pub text: String,
}

/// What [`Store::import_policy`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyImport {
    /// The set now in force.
    pub id: i64,
    /// False when the same text was already in force (nothing written).
    pub changed: bool,
    /// Number of rules.
    pub rules: usize,
}

/// The outcome of evaluating rules at a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyCheck {
    /// Height checked.
    pub height: u32,
    /// Its block hash.
    pub hash: String,
    /// Rules evaluated.
    pub rules: usize,
    /// True when no rule is broken.
    pub ok: bool,
    /// Every broken rule, in rule order.
    pub violations: Vec<Violation>,
}

fn hex_sha256(bytes: &[u8]) -> String {
    bitcoin::hex::DisplayHex::to_lower_hex_string(&sha256::Hash::hash(bytes).as_byte_array()[..])
}

fn policy_set_row(r: &sqlx::any::AnyRow) -> Result<PolicySet> {
    Ok(PolicySet {
        id: r.try_get("id")?,
        sha256: r.try_get("sha256")?,
        source: r.try_get("source")?,
        imported_at: r.try_get("imported_at")?,
        text: r.try_get("text")?,
    })
}

impl Store {
    /// Stores a policy file as the one in force. The text is checked first (a bad file is an
    /// error naming `source`, rule and field, and nothing is written); importing the text
    /// already in force changes nothing.
    pub async fn import_policy(&self, source: &str, text: &str) -> Result<PolicyImport> {
        let rules = parse_rules(source, text).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let sha = hex_sha256(text.as_bytes());
        let mut tx = self.begin_write().await?;
        let current = sqlx::query("SELECT id, sha256 FROM policy_sets ORDER BY id DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        if let Some(row) = current {
            let s: String = row.try_get("sha256")?;
            if s == sha {
                return Ok(PolicyImport {
                    id: row.try_get("id")?,
                    changed: false,
                    rules: rules.len(),
                });
            }
        }
        let row = sqlx::query(
            "INSERT INTO policy_sets (text, sha256, source, imported_at) VALUES ($1, $2, $3, $4) \
             RETURNING id",
        )
        .bind(text)
        .bind(&sha)
        .bind(source)
        .bind(now_rfc3339())
        .fetch_one(&mut *tx)
        .await?;
        let id: i64 = row.try_get("id")?;
        tx.commit().await?;
        Ok(PolicyImport {
            id,
            changed: true,
            rules: rules.len(),
        })
    }

    /// The policy file in force, if one was imported.
    pub async fn policy_set(&self) -> Result<Option<PolicySet>> {
        sqlx::query(
            "SELECT id, sha256, source, imported_at, text FROM policy_sets ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(policy_set_row)
        .transpose()
    }

    /// Every policy file imported, oldest first.
    pub async fn policy_history(&self) -> Result<Vec<PolicySet>> {
        sqlx::query("SELECT id, sha256, source, imported_at, text FROM policy_sets ORDER BY id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(policy_set_row)
            .collect()
    }

    /// The rules in force (empty when no policy file was imported).
    pub async fn policy_rules(&self) -> Result<Vec<Rule>> {
        match self.policy_set().await? {
            None => Ok(Vec::new()),
            Some(p) => parse_rules(&format!("stored policy #{}", p.id), &p.text)
                .map_err(|e| StoreError::Corrupt(e.to_string())),
        }
    }

    /// Evaluates `rules` at `at` (a block of the index), only those of `only` and the
    /// entities below it when given. Refreshes the derived ledger first.
    pub async fn check_policies(
        &self,
        rules: &[Rule],
        at: &BlockMeta,
        only: Option<&EntityCode>,
    ) -> Result<PolicyCheck> {
        let network = self.network().0;
        let only: Option<BTreeSet<EntityCode>> = match only {
            Some(c) => Some(self.entity_subtree(c).await?.into_iter().collect()),
            None => None,
        };
        let entities = self.entities().await?;
        let entity_id: HashMap<String, i64> = entities
            .iter()
            .map(|e| (e.code.to_string(), e.id))
            .collect();
        let times = self.block_times().await?;
        let outputs = self.all_outputs().await?;
        let classified = self.classified_movements().await?;
        let known = self.known_counterparties().await?;
        let mut raw_cache: HashMap<bitcoin::Txid, Option<bitcoin::Transaction>> = HashMap::new();
        let mut violations = Vec::new();
        let mut checked = 0;
        for (n, rule) in rules.iter().enumerate() {
            let at_rule = || format!("rule {} ({})", n + 1, rule.kind());
            let code = EntityCode::parse(rule.entity()).map_err(|e| {
                StoreError::Invalid(format!("{}: entity {:?}: {e}", at_rule(), rule.entity()))
            })?;
            if only.as_ref().is_some_and(|o| !o.contains(&code)) {
                continue;
            }
            checked += 1;
            let subtree: BTreeSet<EntityCode> = match self.entity_subtree(&code).await {
                Ok(s) => s.into_iter().collect(),
                Err(StoreError::NotFound(m)) => {
                    return Err(StoreError::NotFound(format!(
                        "{}: {m} (add it with `tesoro entity add`, or fix the policy file)",
                        at_rule()
                    )))
                }
                Err(e) => return Err(e),
            };
            let ids: BTreeSet<i64> = subtree
                .iter()
                .filter_map(|c| entity_id.get(c.as_str()).copied())
                .collect();
            let wallets = self.wallets(Some(&code)).await?;
            let wallet_name: HashMap<i64, String> =
                wallets.iter().map(|w| (w.id, w.full_name())).collect();

            // Address histories, and which of the subtree's addresses each tx paid.
            let mut by_script: HashMap<Vec<u8>, AddressHistory> = HashMap::new();
            let mut received_at: HashMap<bitcoin::Txid, Vec<String>> = HashMap::new();
            for o in outputs.iter().filter(|o| o.height <= at.height) {
                let Some(wname) = wallet_name.get(&o.wallet_id) else {
                    continue;
                };
                let h = by_script
                    .entry(o.script_pubkey.to_bytes())
                    .or_insert_with(|| AddressHistory {
                        address: script_address(&o.script_pubkey, network)
                            .map(|x| x.to_string())
                            .unwrap_or_else(|| {
                                format!("script:{}", o.script_pubkey.to_hex_string())
                            }),
                        wallet: wname.clone(),
                        key_in_script: o.script_pubkey.is_p2tr() || o.script_pubkey.is_p2pk(),
                        events: Vec::new(),
                    });
                received_at
                    .entry(o.outpoint.txid)
                    .or_default()
                    .push(h.address.clone());
                h.events.push(AddressEvent {
                    height: o.height,
                    time: times.get(&o.height).copied().unwrap_or(0),
                    txid: o.outpoint.txid.to_string(),
                    delta: i64::try_from(o.value.to_sat()).unwrap_or(i64::MAX),
                });
                if let Some((txid, sh)) = o.spent.filter(|(_, sh)| *sh <= at.height) {
                    h.events.push(AddressEvent {
                        height: sh,
                        time: times.get(&sh).copied().unwrap_or(0),
                        txid: txid.to_string(),
                        delta: -i64::try_from(o.value.to_sat()).unwrap_or(i64::MAX),
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

            let in_scope: Vec<&(Movement, tesoro_core::movement::Kind)> = classified
                .iter()
                .filter(|(m, _)| ids.contains(&m.entity) && m.height <= at.height)
                .collect();
            let flows: Vec<Flow> = in_scope
                .iter()
                .map(|(m, kind)| {
                    let mut addresses = received_at.get(&m.txid).cloned().unwrap_or_default();
                    addresses.sort();
                    addresses.dedup();
                    Flow {
                        txid: m.txid.to_string(),
                        height: m.height,
                        time: m.time,
                        kind: *kind,
                        acquired: m.acquired,
                        disposed: m.disposed,
                        fee: m.fee,
                        addresses,
                    }
                })
                .collect();
            // One disposal per transaction, summed over the subtree's entities in it.
            let mut disposals: Vec<Disposal> = Vec::new();
            for (m, _) in in_scope.iter().filter(|(m, _)| m.disposed > 0) {
                if let Some(d) = disposals.iter_mut().find(|d| d.txid == m.txid.to_string()) {
                    d.sats = d.sats.saturating_add(m.disposed);
                    continue;
                }
                if let std::collections::hash_map::Entry::Vacant(slot) = raw_cache.entry(m.txid) {
                    let tx = match self.raw_tx(&m.txid).await? {
                        Some(raw) => Some(
                            bitcoin::Transaction::consensus_decode(&mut raw.as_slice()).map_err(
                                |e| StoreError::Corrupt(format!("transaction {}: {e}", m.txid)),
                            )?,
                        ),
                        None => None,
                    };
                    slot.insert(tx);
                }
                let mut paid: BTreeMap<String, u64> = BTreeMap::new();
                if let Some(Some(tx)) = raw_cache.get(&m.txid) {
                    for o in &tx.output {
                        if let Some(a) = script_address(&o.script_pubkey, network) {
                            let a = a.to_string();
                            if m.counterparties.contains(&a) {
                                *paid.entry(a).or_default() += o.value.to_sat();
                            }
                        }
                    }
                }
                disposals.push(Disposal {
                    txid: m.txid.to_string(),
                    height: m.height,
                    time: m.time,
                    sats: m.disposed,
                    to: paid
                        .into_iter()
                        .map(|(address, sats)| Payee { address, sats })
                        .collect(),
                });
            }
            violations.extend(evaluate(
                rule,
                &Inputs {
                    addresses: &histories,
                    disposals: &disposals,
                    flows: &flows,
                    known_counterparties: &known,
                    now: at.time,
                },
            ));
        }
        Ok(PolicyCheck {
            height: at.height,
            hash: at.hash.to_string(),
            rules: checked,
            ok: violations.is_empty(),
            violations,
        })
    }

    /// Every movement with its final kind (records, counterparty rules and manual
    /// classifications applied, default matching tolerance), in chain order: the stored
    /// classification (see [`Store::ledger_classify`]), brought up to date first.
    async fn classified_movements(&self) -> Result<Vec<(Movement, tesoro_core::movement::Kind)>> {
        self.ledger_classify(MatchTolerance::default()).await?;
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {}, COALESCE(kind, chain_kind) AS k FROM ledger_movements \
             ORDER BY height, tx_index, txid, entity_id",
            crate::ledger::MOVEMENT_COLUMNS
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let k: String = r.try_get("k")?;
                Ok((
                    crate::ledger::movement_row(r)?,
                    k.parse::<tesoro_core::movement::Kind>()
                        .map_err(crate::ledger::corrupt)?,
                ))
            })
            .collect()
    }

    /// Addresses the stored classification rules name (`tesoro movements rules`).
    async fn known_counterparties(&self) -> Result<BTreeSet<String>> {
        let Some(text) = self.ledger_rules().await? else {
            return Ok(BTreeSet::new());
        };
        let file: RulesFile =
            toml::from_str(&text).map_err(|e| StoreError::Corrupt(format!("stored rules: {e}")))?;
        Ok(file
            .counterparty
            .into_iter()
            .flat_map(|c| c.addresses)
            .map(|a| a.trim().to_string())
            .collect())
    }
}
