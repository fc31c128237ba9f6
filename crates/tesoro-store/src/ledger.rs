//! The ledger's persistence: movements derived from the chain index, prices and FX rates,
//! off-chain records, manual classifications and the rules file.
//!
//! Movements are derived data: [`Store::ledger_refresh`] rebuilds them from `outputs` and
//! `txs` whenever the chain index changed (tip hash, output and spend counts, wallets), in one
//! transaction, so a reorg followed by a re-sync gives exactly the same rows. Manual
//! classifications are keyed by (txid, entity) and kept in their own append-only table, so
//! they survive every rebuild.

use std::collections::{BTreeMap, HashMap};

use bitcoin::hashes::Hash;
use bitcoin::{OutPoint, Txid};
use rust_decimal::Decimal;
use sqlx::any::AnyRow;
use sqlx::Row;
use tesoro_core::classify::{
    classify, MatchTolerance, Override, Record, RecordKind, Rules, Source,
};
use tesoro_core::movement::{
    derive_movements, ChainTx, Class, Kind, Movement, OwnedOutput, OwnedSpend, ALL_KINDS,
};
use tesoro_core::price::{fmt_date, parse_date, FxPoint, PriceBook, PricePoint};

use crate::{now_rfc3339, Result, Store, StoreError};

/// What [`Store::ledger_refresh`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshOutcome {
    /// True when the movements were rebuilt; false when they were already current.
    pub rebuilt: bool,
    /// Number of movements now stored.
    pub movements: u64,
}

/// What [`Store::ledger_classify`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassifyOutcome {
    /// True when the classification was recomputed; false when it was already current.
    pub reclassified: bool,
    /// Movements whose kind is not the chain's own (a rule, a record or an override).
    pub classified: u64,
}

/// What an import wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportOutcome {
    /// Rows new or changed.
    pub written: u64,
    /// Rows already there, identical.
    pub unchanged: u64,
}

pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

pub(crate) fn u32_of(r: &AnyRow, c: &str) -> Result<u32> {
    let v: i64 = r.try_get(c)?;
    u32::try_from(v).map_err(|_| corrupt(format!("{c} = {v}")))
}

pub(crate) fn u64_of(r: &AnyRow, c: &str) -> Result<u64> {
    let v: i64 = r.try_get(c)?;
    u64::try_from(v).map_err(|_| corrupt(format!("{c} = {v}")))
}

pub(crate) fn txid_of(r: &AnyRow, c: &str) -> Result<Txid> {
    let b: Vec<u8> = r.try_get(c)?;
    let a: [u8; 32] = b
        .as_slice()
        .try_into()
        .map_err(|_| corrupt(format!("{c}: {} bytes", b.len())))?;
    Ok(Txid::from_byte_array(a))
}

fn i64_of(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| corrupt(format!("{what} {v} is too large")))
}

pub(crate) const MOVEMENT_COLUMNS: &str =
    "txid, entity_id, root_id, height, tx_index, time, received, sent, \
     acquired, disposed, fee, internal_in, internal_out, inputs, outputs, coinbase, chain_kind, \
     counterparties";

pub(crate) fn movement_row(r: &AnyRow) -> Result<Movement> {
    let kind: String = r.try_get("chain_kind")?;
    let cps: String = r.try_get("counterparties")?;
    let coinbase: i64 = r.try_get("coinbase")?;
    Ok(Movement {
        txid: txid_of(r, "txid")?,
        entity: r.try_get("entity_id")?,
        root: r.try_get("root_id")?,
        height: u32_of(r, "height")?,
        tx_index: u32_of(r, "tx_index")?,
        time: u32_of(r, "time")?,
        received: u64_of(r, "received")?,
        sent: u64_of(r, "sent")?,
        acquired: u64_of(r, "acquired")?,
        disposed: u64_of(r, "disposed")?,
        fee: u64_of(r, "fee")?,
        internal_in: u64_of(r, "internal_in")?,
        internal_out: u64_of(r, "internal_out")?,
        inputs: u32_of(r, "inputs")?,
        outputs: u32_of(r, "outputs")?,
        coinbase: coinbase != 0,
        chain_kind: kind.parse::<Kind>().map_err(corrupt)?,
        counterparties: cps.split_whitespace().map(str::to_string).collect(),
    })
}

async fn insert_movements(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    movements: &[Movement],
) -> Result<()> {
    crate::sql::write_rows(
        tx,
        &format!("INSERT INTO ledger_movements ({MOVEMENT_COLUMNS}) VALUES "),
        18,
        "",
        movements,
        |q, m| {
            Ok(q.bind(m.txid.as_byte_array().to_vec())
                .bind(m.entity)
                .bind(m.root)
                .bind(i64::from(m.height))
                .bind(i64::from(m.tx_index))
                .bind(i64::from(m.time))
                .bind(i64_of(m.received, "received")?)
                .bind(i64_of(m.sent, "sent")?)
                .bind(i64_of(m.acquired, "acquired")?)
                .bind(i64_of(m.disposed, "disposed")?)
                .bind(i64_of(m.fee, "fee")?)
                .bind(i64_of(m.internal_in, "internal_in")?)
                .bind(i64_of(m.internal_out, "internal_out")?)
                .bind(i64::from(m.inputs))
                .bind(i64::from(m.outputs))
                .bind(i64::from(m.coinbase))
                .bind(m.chain_kind.as_str())
                .bind(m.counterparties.join(" ")))
        },
    )
    .await?;
    Ok(())
}

/// The ledger's change counters (see [`Store::ledger_versions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LedgerVersions {
    /// Blocks, transactions, watched outputs, wallets, entities.
    pub chain: i64,
    /// Off-chain records, manual overrides, the rules file.
    pub class: i64,
    /// BTC prices and FX rates.
    pub prices: i64,
    /// Signed statements, proofs of control, wallet tiers, listed addresses.
    pub published: i64,
}

impl LedgerVersions {
    /// All four counters as one string: it changes with anything a public page shows,
    /// which is what the server's in-memory answers are kept under.
    pub fn data_version(&self) -> String {
        format!(
            "{}.{}.{}.{}",
            self.chain, self.class, self.prices, self.published
        )
    }
}

/// Writes one `ledger_state` value inside `tx`.
pub(crate) async fn set_state(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    key: &str,
    value: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO ledger_state (key, value) VALUES ($1, $2) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )
    .bind(key)
    .bind(value)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    /// Writes movements as given, in one transaction, without touching the derivation
    /// fingerprint (benchmarks and imports of precomputed ledgers; the next
    /// [`Store::ledger_refresh`] replaces them with what the chain index implies).
    pub async fn ledger_insert_movements(&self, movements: &[Movement]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        insert_movements(&mut tx, movements).await?;
        tx.commit().await?;
        Ok(())
    }
    /// The change counters (migration 0008): `chain`, `class`, `prices`. Triggers bump them
    /// in the same transaction as every write to what the ledger is derived from, so
    /// comparing them with what a derivation was made from costs one tiny read instead of
    /// scanning the million-row tables.
    pub async fn ledger_versions(&self) -> Result<LedgerVersions> {
        let mut v = LedgerVersions::default();
        for r in sqlx::query("SELECT name, CAST(n AS BIGINT) AS n FROM ledger_versions")
            .fetch_all(&self.pool)
            .await?
        {
            let name: String = r.try_get("name")?;
            let n: i64 = r.try_get("n")?;
            match name.as_str() {
                "chain" => v.chain = n,
                "class" => v.class = n,
                "prices" => v.prices = n,
                "published" => v.published = n,
                _ => {}
            }
        }
        Ok(v)
    }

    /// What movements are derived from: the `chain` counter.
    async fn ledger_source_fingerprint(&self) -> Result<String> {
        Ok(format!("v2:{}", self.ledger_versions().await?.chain))
    }

    /// A stored count (`derived_count`, `classified_count`), written with the rows it counts.
    async fn ledger_state_count(&self, key: &str) -> Result<Option<u64>> {
        Ok(self
            .ledger_state(key)
            .await?
            .and_then(|v| v.parse::<u64>().ok()))
    }

    /// Rebuilds the movements from the chain index when it changed since the last build.
    pub async fn ledger_refresh(&self) -> Result<RefreshOutcome> {
        let fp = self.ledger_source_fingerprint().await?;
        let stored = sqlx::query("SELECT value FROM ledger_state WHERE key = 'derived_from'")
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get::<String, _>("value"))
            .transpose()?;
        if stored.as_deref() == Some(fp.as_str()) {
            if let Some(n) = self.ledger_state_count("derived_count").await? {
                return Ok(RefreshOutcome {
                    rebuilt: false,
                    movements: n,
                });
            }
        }
        let movements = self.derive_ledger_movements().await?;
        let mut tx = self.begin_write().await?;
        // Two commands refreshing at once: on PostgreSQL the second waits here, then sees the
        // first's fingerprint and leaves the rows alone (without the lock its DELETE would
        // miss the first's new rows and its INSERT would collide). SQLite serializes writers.
        if self.backend == crate::Backend::Postgres {
            sqlx::query("LOCK TABLE ledger_state IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
            let now = sqlx::query("SELECT value FROM ledger_state WHERE key = 'derived_from'")
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get::<String, _>("value"))
                .transpose()?;
            if now.as_deref() == Some(fp.as_str()) {
                tx.rollback().await?;
                return Ok(RefreshOutcome {
                    rebuilt: false,
                    movements: movements.len() as u64,
                });
            }
        }
        sqlx::query("DELETE FROM ledger_movements")
            .execute(&mut *tx)
            .await?;
        insert_movements(&mut tx, &movements).await?;
        set_state(&mut tx, "derived_from", &fp).await?;
        set_state(&mut tx, "derived_count", &movements.len().to_string()).await?;
        tx.commit().await?;
        if movements.len() as u64 >= Self::BULK_ROWS {
            self.refresh_statistics(&["ledger_movements"]).await?;
        }
        Ok(RefreshOutcome {
            rebuilt: true,
            movements: movements.len() as u64,
        })
    }

    /// Each wallet's entity (wallet id → entity id), for passes over many outputs that would
    /// otherwise join `wallets` row by row.
    pub(crate) async fn wallet_entities(&self) -> Result<HashMap<i64, i64>> {
        let rows = sqlx::query("SELECT id, entity_id FROM wallets")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("entity_id")?)))
            .collect()
    }

    /// Derives movements from the chain index without storing them.
    pub async fn derive_ledger_movements(&self) -> Result<Vec<Movement>> {
        let entities = self.entities().await?;
        let parent: HashMap<i64, Option<i64>> = {
            let by_code: HashMap<&str, i64> =
                entities.iter().map(|e| (e.code.as_str(), e.id)).collect();
            entities
                .iter()
                .map(|e| {
                    (
                        e.id,
                        e.parent
                            .as_ref()
                            .and_then(|p| by_code.get(p.as_str()).copied()),
                    )
                })
                .collect()
        };
        let mut root_of = BTreeMap::new();
        for e in &entities {
            let mut cur = e.id;
            let mut hops = 0;
            while let Some(Some(p)) = parent.get(&cur) {
                cur = *p;
                hops += 1;
                if hops > 64 {
                    return Err(corrupt("entity tree has a cycle"));
                }
            }
            root_of.insert(e.id, cur);
        }
        let wallet_entity = self.wallet_entities().await?;
        let times: HashMap<u32, u32> = {
            let rows = sqlx::query("SELECT height, time FROM blocks")
                .fetch_all(&self.pool)
                .await?;
            rows.iter()
                .map(|r| Ok((u32_of(r, "height")?, u32_of(r, "time")?)))
                .collect::<Result<_>>()?
        };
        let mut created: HashMap<Txid, Vec<OwnedOutput>> = HashMap::new();
        let mut spent: HashMap<Txid, Vec<OwnedSpend>> = HashMap::new();
        let rows = sqlx::query("SELECT txid, vout, value, wallet_id, spent_txid FROM outputs")
            .fetch_all(&self.pool)
            .await?;
        for r in &rows {
            let txid = txid_of(r, "txid")?;
            let vout = u32_of(r, "vout")?;
            let value = u64_of(r, "value")?;
            let wallet: i64 = r.try_get("wallet_id")?;
            let entity = *wallet_entity
                .get(&wallet)
                .ok_or_else(|| corrupt(format!("output of unknown wallet {wallet}")))?;
            created.entry(txid).or_default().push(OwnedOutput {
                vout,
                value,
                wallet,
                entity,
            });
            let st: Option<Vec<u8>> = r.try_get("spent_txid")?;
            if st.is_some() {
                let s = txid_of(r, "spent_txid")?;
                spent.entry(s).or_default().push(OwnedSpend {
                    outpoint: OutPoint { txid, vout },
                    value,
                    wallet,
                    entity,
                });
            }
        }
        drop(rows);
        let mut chain_txs = Vec::with_capacity(created.len() + spent.len());
        let rows = sqlx::query("SELECT txid, height, tx_index, raw FROM txs")
            .fetch_all(&self.pool)
            .await?;
        for r in &rows {
            let txid = txid_of(r, "txid")?;
            let c = created.remove(&txid).unwrap_or_default();
            let s = spent.remove(&txid).unwrap_or_default();
            if c.is_empty() && s.is_empty() {
                continue;
            }
            let raw: Vec<u8> = r.try_get("raw")?;
            let tx: bitcoin::Transaction = bitcoin::consensus::deserialize(&raw)
                .map_err(|e| corrupt(format!("transaction {txid} does not decode: {e}")))?;
            let height = u32_of(r, "height")?;
            chain_txs.push(ChainTx {
                tx,
                txid,
                height,
                tx_index: u32_of(r, "tx_index")?,
                time: times.get(&height).copied().unwrap_or(0),
                created: c,
                spent: s,
            });
        }
        if let Some(t) = created.keys().chain(spent.keys()).next() {
            return Err(corrupt(format!(
                "transaction {t} touches a watched output but is not in the txs table"
            )));
        }
        Ok(derive_movements(&chain_txs, &root_of, self.network.0))
    }

    /// Every stored movement in chain order (refresh first).
    pub async fn ledger_movements(&self) -> Result<Vec<Movement>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MOVEMENT_COLUMNS} FROM ledger_movements ORDER BY height, tx_index, txid, entity_id"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(movement_row).collect()
    }

    /// What the classification depends on: the movements (as derived), the `class` counter
    /// (records, overrides, rules) and the matching tolerance.
    async fn classification_fingerprint(&self, tol: MatchTolerance) -> Result<String> {
        let derived = self.ledger_state("derived_from").await?.unwrap_or_default();
        Ok(format!(
            "v2|{derived}|{}|{}:{}",
            self.ledger_versions().await?.class,
            tol.days,
            tol.amount_bp
        ))
    }

    /// Brings the stored classification up to date: refreshes the movements, then, when the
    /// movements, records, overrides, rules or `tol` changed since the last run, classifies
    /// again (chain, rules, records, overrides; see `tesoro_core::classify`) and stores the
    /// kinds that differ from the chain's with the movements. Only acquisitions, disposals
    /// and movements named by an override can change, so only those are loaded.
    pub async fn ledger_classify(&self, tol: MatchTolerance) -> Result<ClassifyOutcome> {
        self.ledger_refresh().await?;
        let fp = self.classification_fingerprint(tol).await?;
        let stored = self.ledger_state("classified_with").await?;
        let count_classified = || async {
            if let Some(n) = self.ledger_state_count("classified_count").await? {
                return Ok::<u64, StoreError>(n);
            }
            let n: i64 = sqlx::query(
                "SELECT CAST(COUNT(*) AS BIGINT) AS n FROM ledger_movements WHERE source IS NOT NULL",
            )
            .fetch_one(&self.pool)
            .await?
            .try_get("n")?;
            Ok::<u64, StoreError>(n.max(0) as u64)
        };
        if stored.as_deref() == Some(fp.as_str()) {
            return Ok(ClassifyOutcome {
                reclassified: false,
                classified: count_classified().await?,
            });
        }
        let records = self.records().await?;
        let overrides = self.overrides().await?;
        let rules = match self.ledger_rules().await? {
            Some(t) => Rules::parse("stored rules", &t).map_err(corrupt)?,
            None => Rules::default(),
        };
        let kinds: Vec<String> = ALL_KINDS
            .iter()
            .filter(|k| matches!(k.class(), Class::Acquisition | Class::Disposal))
            .map(|k| format!("'{}'", k.as_str()))
            .collect();
        // Kind names are our own constants, not input.
        let mut movements: Vec<Movement> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MOVEMENT_COLUMNS} FROM ledger_movements WHERE chain_kind IN ({}) \
             ORDER BY height, tx_index, txid, entity_id",
            kinds.join(",")
        )))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(movement_row)
        .collect::<Result<_>>()?;
        let have: std::collections::HashSet<(Txid, i64)> =
            movements.iter().map(|m| (m.txid, m.entity)).collect();
        let mut extra_txids: Vec<Txid> = overrides
            .iter()
            .filter(|o| !have.contains(&(o.txid, o.entity)))
            .map(|o| o.txid)
            .collect();
        extra_txids.sort();
        extra_txids.dedup();
        for t in extra_txids {
            movements.extend(
                self.ledger_movements_of_tx(&t)
                    .await?
                    .into_iter()
                    .filter(|m| !have.contains(&(m.txid, m.entity))),
            );
        }
        movements.sort_by(|a, b| {
            (a.height, a.tx_index, a.txid, a.entity).cmp(&(b.height, b.tx_index, b.txid, b.entity))
        });
        // A record naming an entity may match movements of that entity and everything below.
        let entities = self.entities().await?;
        let parent_of: HashMap<i64, Option<String>> = entities
            .iter()
            .map(|e| (e.id, e.parent.as_ref().map(|p| p.as_str().to_string())))
            .collect();
        let id_of: HashMap<String, i64> = entities
            .iter()
            .map(|e| (e.code.as_str().to_string(), e.id))
            .collect();
        let under = |entity: i64, code: &str| -> bool {
            let Some(&target) = id_of.get(code) else {
                return false;
            };
            let mut cur = Some(entity);
            for _ in 0..64 {
                match cur {
                    Some(c) if c == target => return true,
                    Some(c) => {
                        cur = parent_of
                            .get(&c)
                            .and_then(|p| p.as_ref())
                            .and_then(|p| id_of.get(p).copied())
                    }
                    None => return false,
                }
            }
            false
        };
        let may = |r: &Record, m: &Movement| match &r.entity {
            None => true,
            Some(c) => under(m.entity, c),
        };
        let c = classify(movements, &rules, &records, &overrides, tol, &may);
        let mut tx = self.begin_write().await?;
        if self.backend == crate::Backend::Postgres {
            // Two commands classifying at once: the second waits, then finds the work done.
            sqlx::query("LOCK TABLE ledger_state IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await?;
            let now = sqlx::query("SELECT value FROM ledger_state WHERE key = 'classified_with'")
                .fetch_optional(&mut *tx)
                .await?
                .map(|r| r.try_get::<String, _>("value"))
                .transpose()?;
            if now.as_deref() == Some(fp.as_str()) {
                tx.rollback().await?;
                return Ok(ClassifyOutcome {
                    reclassified: false,
                    classified: count_classified().await?,
                });
            }
        }
        sqlx::query(
            "UPDATE ledger_movements SET kind = NULL, source = NULL, note = NULL, record_id = NULL \
             WHERE source IS NOT NULL",
        )
        .execute(&mut *tx)
        .await?;
        let mut classified = 0;
        for cm in &c.movements {
            if cm.source == Source::Chain {
                continue;
            }
            classified += 1;
            sqlx::query(
                "UPDATE ledger_movements SET kind = $1, source = $2, note = $3, record_id = $4 \
                 WHERE txid = $5 AND entity_id = $6",
            )
            .bind(cm.kind.as_str())
            .bind(cm.source.as_str())
            .bind(cm.note.clone())
            .bind(cm.record.and_then(|i| records.get(i)).map(|r| r.id))
            .bind(cm.movement.txid.as_byte_array().to_vec())
            .bind(cm.movement.entity)
            .execute(&mut *tx)
            .await?;
        }
        set_state(&mut tx, "classified_with", &fp).await?;
        set_state(&mut tx, "classified_count", &classified.to_string()).await?;
        tx.commit().await?;
        Ok(ClassifyOutcome {
            reclassified: true,
            classified,
        })
    }

    pub(crate) async fn ledger_state(&self, key: &str) -> Result<Option<String>> {
        sqlx::query("SELECT value FROM ledger_state WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get::<String, _>("value").map_err(StoreError::from))
            .transpose()
    }

    /// The stored movements of one transaction (one per entity it touches).
    pub async fn ledger_movements_of_tx(&self, txid: &Txid) -> Result<Vec<Movement>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {MOVEMENT_COLUMNS} FROM ledger_movements WHERE txid = $1 ORDER BY entity_id"
        )))
        .bind(txid.as_byte_array().to_vec())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(movement_row).collect()
    }

    /// Stores BTC prices (a day's price is replaced by a newer import), in one transaction.
    pub async fn import_prices(
        &self,
        points: &[PricePoint],
        source: &str,
    ) -> Result<ImportOutcome> {
        let mut out = ImportOutcome::default();
        let existing: HashMap<(String, String), String> =
            sqlx::query("SELECT day, currency, price FROM prices")
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| {
                    Ok((
                        (r.try_get("day")?, r.try_get("currency")?),
                        r.try_get("price")?,
                    ))
                })
                .collect::<Result<_>>()?;
        let mut tx = self.begin_write().await?;
        for p in points {
            let day = fmt_date(p.date);
            let price = p.price.normalize().to_string();
            if existing.get(&(day.clone(), p.currency.clone())) == Some(&price) {
                out.unchanged += 1;
                continue;
            }
            sqlx::query(
                "INSERT INTO prices (day, currency, price, source) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (day, currency) DO UPDATE SET price = excluded.price, source = excluded.source",
            )
            .bind(&day)
            .bind(&p.currency)
            .bind(&price)
            .bind(source)
            .execute(&mut *tx)
            .await?;
            out.written += 1;
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Stores FX rates, in one transaction.
    pub async fn import_fx(&self, points: &[FxPoint], source: &str) -> Result<ImportOutcome> {
        let mut out = ImportOutcome::default();
        let mut tx = self.begin_write().await?;
        for p in points {
            let rate = p.rate.normalize().to_string();
            let r = sqlx::query(
                "INSERT INTO fx_rates (day, base, quote, rate, source) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (day, base, quote) DO UPDATE SET rate = excluded.rate, source = excluded.source \
                 WHERE fx_rates.rate <> excluded.rate",
            )
            .bind(fmt_date(p.date))
            .bind(&p.base)
            .bind(&p.quote)
            .bind(&rate)
            .bind(source)
            .execute(&mut *tx)
            .await?;
            if r.rows_affected() > 0 {
                out.written += 1;
            } else {
                out.unchanged += 1;
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Every price and FX rate.
    pub async fn price_book(&self) -> Result<PriceBook> {
        let mut b = PriceBook::default();
        for r in sqlx::query("SELECT day, currency, price FROM prices")
            .fetch_all(&self.pool)
            .await?
        {
            let day: String = r.try_get("day")?;
            let cur: String = r.try_get("currency")?;
            let price: String = r.try_get("price")?;
            b.add_price(
                parse_date(&day).map_err(corrupt)?,
                &cur,
                price
                    .parse::<Decimal>()
                    .map_err(|_| corrupt(format!("price {price:?}")))?,
            );
        }
        for r in sqlx::query("SELECT day, base, quote, rate FROM fx_rates")
            .fetch_all(&self.pool)
            .await?
        {
            let day: String = r.try_get("day")?;
            let base: String = r.try_get("base")?;
            let quote: String = r.try_get("quote")?;
            let rate: String = r.try_get("rate")?;
            b.add_fx(
                parse_date(&day).map_err(corrupt)?,
                &base,
                &quote,
                rate.parse::<Decimal>()
                    .map_err(|_| corrupt(format!("rate {rate:?}")))?,
            );
        }
        Ok(b)
    }

    /// Number of stored prices per currency, with first and last day.
    pub async fn price_summary(&self) -> Result<Vec<(String, i64, String, String)>> {
        let rows = sqlx::query(
            "SELECT currency, COUNT(*) AS n, MIN(day) AS first, MAX(day) AS last FROM prices GROUP BY currency ORDER BY currency",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("currency")?,
                    r.try_get("n")?,
                    r.try_get("first")?,
                    r.try_get("last")?,
                ))
            })
            .collect()
    }

    /// Stores off-chain records; a record with the same content is not stored twice. One
    /// transaction: a failure writes nothing.
    pub async fn import_records(&self, records: &[Record], source: &str) -> Result<ImportOutcome> {
        let mut tx = self.begin_write().await?;
        let out = self.import_records_in(&mut tx, records, source).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// [`Store::import_records`] inside the caller's transaction (to audit it in the same
    /// one). On error the caller must drop (roll back) the transaction.
    pub async fn import_records_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        records: &[Record],
        source: &str,
    ) -> Result<ImportOutcome> {
        let mut out = ImportOutcome::default();
        for rec in records {
            let r = sqlx::query(
                "INSERT INTO ledger_records (fingerprint, kind, entity_code, day, sats, fiat, currency, \
                 counterparty, reference, txid, source, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (fingerprint) DO NOTHING",
            )
            .bind(rec.fingerprint())
            .bind(rec.kind.as_str())
            .bind(rec.entity.clone())
            .bind(fmt_date(rec.date))
            .bind(i64_of(rec.sats, "sats")?)
            .bind(rec.fiat.map(|f| f.normalize().to_string()))
            .bind(rec.currency.clone())
            .bind(rec.counterparty.clone())
            .bind(rec.reference.clone())
            .bind(rec.txid.map(|t| t.as_byte_array().to_vec()))
            .bind(source)
            .bind(now_rfc3339())
            .execute(&mut **tx)
            .await?;
            if r.rows_affected() > 0 {
                out.written += 1;
            } else {
                out.unchanged += 1;
            }
        }
        Ok(out)
    }

    /// Every off-chain record, by id.
    pub async fn records(&self) -> Result<Vec<Record>> {
        self.records_where("1 = 1", "").await
    }

    /// Records matching `cond` (our own SQL; `$1` is bound to `arg`), by id.
    pub(crate) async fn records_where(&self, cond: &str, arg: &str) -> Result<Vec<Record>> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id, kind, entity_code, day, sats, fiat, currency, counterparty, reference, txid \
             FROM ledger_records WHERE {cond} ORDER BY id"
        )));
        if cond.contains("$1") {
            q = q.bind(arg.to_string());
        }
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                let day: String = r.try_get("day")?;
                let fiat: Option<String> = r.try_get("fiat")?;
                let txid: Option<Vec<u8>> = r.try_get("txid")?;
                Ok(Record {
                    id: r.try_get("id")?,
                    kind: kind.parse::<RecordKind>().map_err(corrupt)?,
                    entity: r.try_get("entity_code")?,
                    date: parse_date(&day).map_err(corrupt)?,
                    sats: u64_of(r, "sats")?,
                    fiat: fiat
                        .map(|f| {
                            f.parse::<Decimal>()
                                .map_err(|_| corrupt(format!("fiat {f:?}")))
                        })
                        .transpose()?,
                    currency: r.try_get("currency")?,
                    counterparty: r.try_get("counterparty")?,
                    reference: r.try_get("reference")?,
                    txid: match txid {
                        Some(_) => Some(txid_of(r, "txid")?),
                        None => None,
                    },
                })
            })
            .collect()
    }

    /// Records a manual classification (kept forever; the newest per (txid, entity) counts).
    pub async fn add_override(
        &self,
        txid: &Txid,
        entity: i64,
        kind: Kind,
        reason: &str,
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        self.add_override_in(&mut tx, txid, entity, kind, reason)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// [`Store::add_override`] inside the caller's transaction (to audit it in the same one).
    pub async fn add_override_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        txid: &Txid,
        entity: i64,
        kind: Kind,
        reason: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO ledger_overrides (txid, entity_id, kind, reason, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(txid.as_byte_array().to_vec())
        .bind(entity)
        .bind(kind.as_str())
        .bind(reason)
        .bind(now_rfc3339())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Every manual classification, oldest first.
    pub async fn overrides(&self) -> Result<Vec<Override>> {
        let rows = sqlx::query(
            "SELECT txid, entity_id, kind, reason, created_at FROM ledger_overrides ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                Ok(Override {
                    txid: txid_of(r, "txid")?,
                    entity: r.try_get("entity_id")?,
                    kind: kind.parse::<Kind>().map_err(corrupt)?,
                    reason: r.try_get("reason")?,
                    at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Stores the rules file text (already checked by the caller).
    pub async fn set_ledger_rules(&self, text: &str) -> Result<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO ledger_state (key, value) VALUES ('rules', $1) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(text)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The stored rules file text, if any.
    pub async fn ledger_rules(&self) -> Result<Option<String>> {
        sqlx::query("SELECT value FROM ledger_state WHERE key = 'rules'")
            .fetch_optional(&self.pool)
            .await?
            .map(|r| r.try_get::<String, _>("value").map_err(StoreError::from))
            .transpose()
    }
}
