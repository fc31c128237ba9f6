//! The classified ledger as the portal reads it: movements refreshed from the chain index,
//! then classified with the stored rules, off-chain records and manual overrides (the same
//! inputs, in the same order, as `tesoro movements`).

use std::collections::{BTreeMap, BTreeSet};

use tesoro_core::classify::{classify, Classification, Classified, MatchTolerance, Record, Rules};
use tesoro_core::{Entity, EntityCode};
use tesoro_store::Store;

use super::PortalError;

/// Classified movements, the records they were matched with, and entity names.
pub struct Ledger {
    /// Classification result (movements in chain order).
    pub classification: Classification,
    /// Records in store order (indices match `Classified::record`).
    pub records: Vec<Record>,
    /// Entities by id.
    pub entities: BTreeMap<i64, Entity>,
}

impl Ledger {
    /// The code of an entity id.
    pub fn code(&self, id: i64) -> String {
        self.entities
            .get(&id)
            .map_or_else(|| format!("#{id}"), |e| e.code.as_str().to_string())
    }

    /// Classified movements in chain order.
    pub fn movements(&self) -> &[Classified] {
        &self.classification.movements
    }
}

/// Entity ids of `code` and everything below it.
pub async fn scope_ids(store: &Store, code: &EntityCode) -> Result<BTreeSet<i64>, PortalError> {
    let all = store.entities().await?;
    let codes = store.entity_subtree(code).await?;
    Ok(all
        .iter()
        .filter(|e| codes.contains(&e.code))
        .map(|e| e.id)
        .collect())
}

/// Refreshes derived movements (a no-op when the chain index has not changed) and
/// classifies them with the default matching tolerance.
pub async fn load(store: &Store) -> Result<Ledger, PortalError> {
    store.ledger_refresh().await?;
    let movements = store.ledger_movements().await?;
    let records = store.records().await?;
    let overrides = store.overrides().await?;
    let rules = match store.ledger_rules().await? {
        Some(t) => Rules::parse("stored rules", &t)
            .map_err(|e| PortalError::Data(format!("the stored rules no longer parse: {e}")))?,
        None => Rules::default(),
    };
    let all = store.entities().await?;
    let mut subtree_of: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for r in &records {
        let Some(c) = &r.entity else { continue };
        if subtree_of.contains_key(c) {
            continue;
        }
        let ids = match EntityCode::parse(c) {
            Ok(code) => scope_ids(store, &code).await.unwrap_or_default(),
            Err(_) => BTreeSet::new(),
        };
        subtree_of.insert(c.clone(), ids);
    }
    let may = |r: &Record, m: &tesoro_core::movement::Movement| match &r.entity {
        None => true,
        Some(c) => subtree_of.get(c).is_some_and(|s| s.contains(&m.entity)),
    };
    let classification = classify(
        movements,
        &rules,
        &records,
        &overrides,
        MatchTolerance::default(),
        &may,
    );
    Ok(Ledger {
        classification,
        records,
        entities: all.into_iter().map(|e| (e.id, e)).collect(),
    })
}
