//! The chain index: blocks, watched outputs and their spends, applied block by block.
//!
//! Writes take whole [`BlockDelta`]s inside one transaction and are idempotent: applying a
//! block that is already stored changes nothing, so a sync killed at any point and run again
//! ends in the same state. A reorg is undone with [`Store::rollback_to`], which removes every
//! row above the fork point; the state is then exactly that of a fresh sync to the fork.

use std::collections::BTreeMap;

use bitcoin::hashes::Hash;
use bitcoin::{Amount, BlockHash, OutPoint, ScriptBuf, Txid};
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;
use tesoro_core::chain::{BlockDelta, BlockMeta, ScriptOwner};

use crate::sql::write_rows;
use crate::{Result, Store, StoreError};

/// What [`Store::apply_blocks`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Blocks newly stored.
    pub blocks: u32,
    /// Blocks that were already stored with the same hash (left as they were).
    pub already_stored: u32,
    /// Watched outputs newly stored.
    pub outputs: u32,
    /// Spends newly recorded.
    pub spends: u32,
}

/// An unspent (or, at a past height, then-unspent) watched output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UtxoRow {
    /// Outpoint.
    pub outpoint: OutPoint,
    /// Value.
    #[serde(with = "bitcoin::amount::serde::as_sat")]
    pub value: Amount,
    /// Script it pays.
    pub script_pubkey: ScriptBuf,
    /// Watching wallet.
    pub wallet_id: i64,
    /// Keychain and index when derived from a descriptor.
    pub derivation: Option<(u32, u32)>,
    /// Height of the block that created it.
    pub height: u32,
    /// Created by a coinbase transaction.
    pub coinbase: bool,
    /// Spending transaction and height, if spent at the chain tip.
    pub spent: Option<(Txid, u32)>,
}

/// One transaction as seen from a set of wallets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TxTouch {
    /// Transaction id.
    pub txid: Txid,
    /// Block height.
    pub height: u32,
    /// Block time (Unix seconds).
    pub time: u32,
    /// Sats paid to the wallets.
    pub received: u64,
    /// Sats spent from the wallets.
    pub sent: u64,
}

fn u32_col(row: &AnyRow, col: &str) -> Result<u32> {
    let v: i64 = row.try_get(col)?;
    u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{col} = {v}")))
}

fn opt_u32_col(row: &AnyRow, col: &str) -> Result<Option<u32>> {
    let v: Option<i64> = row.try_get(col)?;
    v.map(|v| u32::try_from(v).map_err(|_| StoreError::Corrupt(format!("{col} = {v}"))))
        .transpose()
}

fn hash32(row: &AnyRow, col: &str) -> Result<[u8; 32]> {
    let v: Vec<u8> = row.try_get(col)?;
    <[u8; 32]>::try_from(v.as_slice())
        .map_err(|_| StoreError::Corrupt(format!("{col} has {} bytes", v.len())))
}

fn block_meta(row: &AnyRow) -> Result<BlockMeta> {
    Ok(BlockMeta {
        height: u32_col(row, "height")?,
        hash: BlockHash::from_byte_array(hash32(row, "hash")?),
        prev_hash: BlockHash::from_byte_array(hash32(row, "prev_hash")?),
        time: u32_col(row, "time")?,
    })
}

fn utxo_row(row: &AnyRow) -> Result<UtxoRow> {
    let keychain = opt_u32_col(row, "keychain")?;
    let index = opt_u32_col(row, "derivation_index")?;
    let spent_txid: Option<Vec<u8>> = row.try_get("spent_txid")?;
    let spent = match spent_txid {
        Some(b) => {
            let arr = <[u8; 32]>::try_from(b.as_slice())
                .map_err(|_| StoreError::Corrupt("spent_txid".into()))?;
            let h = opt_u32_col(row, "spent_height")?
                .ok_or_else(|| StoreError::Corrupt("spent_txid without spent_height".into()))?;
            Some((Txid::from_byte_array(arr), h))
        }
        None => None,
    };
    let value: i64 = row.try_get("value")?;
    let script: Vec<u8> = row.try_get("script_pubkey")?;
    let coinbase: i64 = row.try_get("coinbase")?;
    Ok(UtxoRow {
        outpoint: OutPoint {
            txid: Txid::from_byte_array(hash32(row, "txid")?),
            vout: u32_col(row, "vout")?,
        },
        value: Amount::from_sat(
            u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("value {value}")))?,
        ),
        script_pubkey: ScriptBuf::from_bytes(script),
        wallet_id: row.try_get("wallet_id")?,
        derivation: keychain.zip(index),
        height: u32_col(row, "height")?,
        coinbase: coinbase != 0,
        spent,
    })
}

fn owner_wallet(owner: &ScriptOwner) -> Result<i64> {
    i64::try_from(owner.owner).map_err(|_| StoreError::Corrupt(format!("owner id {}", owner.owner)))
}

const UTXO_COLUMNS: &str = "txid, vout, value, script_pubkey, wallet_id, keychain, \
     derivation_index, coinbase, height, tx_index, spent_txid, spent_vin, spent_height";

impl Store {
    /// The highest stored block.
    pub async fn chain_tip(&self) -> Result<Option<BlockMeta>> {
        let row = sqlx::query(
            "SELECT height, hash, prev_hash, time FROM blocks ORDER BY height DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(block_meta).transpose()
    }

    /// The lowest stored block (where the scan started).
    pub async fn chain_start(&self) -> Result<Option<BlockMeta>> {
        let row =
            sqlx::query("SELECT height, hash, prev_hash, time FROM blocks ORDER BY height LIMIT 1")
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(block_meta).transpose()
    }

    /// The stored block at `height`.
    pub async fn block_at(&self, height: u32) -> Result<Option<BlockMeta>> {
        let row = sqlx::query("SELECT height, hash, prev_hash, time FROM blocks WHERE height = $1")
            .bind(i64::from(height))
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(block_meta).transpose()
    }

    /// The last block whose timestamp is at or before `unix_time` (end of a UTC day, say).
    pub async fn block_at_or_before_time(&self, unix_time: i64) -> Result<Option<BlockMeta>> {
        let row = sqlx::query(
            "SELECT height, hash, prev_hash, time FROM blocks WHERE height = \
             (SELECT MAX(height) FROM blocks WHERE time <= $1)",
        )
        .bind(unix_time)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(block_meta).transpose()
    }

    /// Applies blocks in height order, all in one transaction. Blocks already stored with the
    /// same hash are skipped; a block that does not link to the stored tip, or that differs
    /// from a stored block at its height, is refused (undo the fork with [`Store::rollback_to`]
    /// first) and nothing of the batch is written.
    pub async fn apply_blocks(&self, deltas: &[BlockDelta]) -> Result<ApplyOutcome> {
        self.apply_blocks_for(deltas, &[]).await
    }

    /// [`Store::apply_blocks`], and in the same transaction records that `wallets` have been
    /// scanned up to the batch's last block.
    pub async fn apply_blocks_for(
        &self,
        deltas: &[BlockDelta],
        wallets: &[i64],
    ) -> Result<ApplyOutcome> {
        let mut out = ApplyOutcome::default();
        let Some(last) = deltas.last() else {
            return Ok(out);
        };
        let mut tx = self.begin_write().await?;
        let tip_row = sqlx::query(
            "SELECT height, hash, prev_hash, time FROM blocks ORDER BY height DESC LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let mut tip = tip_row.as_ref().map(block_meta).transpose()?;
        // The stored hashes at the batch's heights, in one query instead of one per block.
        let lo = deltas.iter().map(|d| d.meta.height).min().unwrap_or(0);
        let hi = deltas.iter().map(|d| d.meta.height).max().unwrap_or(0);
        let mut stored: BTreeMap<u32, BlockHash> = BTreeMap::new();
        for row in sqlx::query("SELECT height, hash FROM blocks WHERE height BETWEEN $1 AND $2")
            .bind(i64::from(lo))
            .bind(i64::from(hi))
            .fetch_all(&mut *tx)
            .await?
        {
            let h: i64 = row.try_get("height")?;
            let h = u32::try_from(h).map_err(|_| StoreError::Corrupt(format!("height {h}")))?;
            stored.insert(h, BlockHash::from_byte_array(hash32(&row, "hash")?));
        }
        // Checked first, written after: a batch that fails a check writes nothing (the
        // transaction is dropped), as before, and the writes go out many rows a statement.
        let mut new_blocks = Vec::new();
        for d in deltas {
            let m = &d.meta;
            match stored.get(&m.height) {
                Some(h) if *h != m.hash => {
                    return Err(StoreError::Conflict(format!(
                        "block {} at height {} differs from the stored {}: the chain reorganised; undo to the fork point first",
                        m.hash, m.height, h
                    )));
                }
                Some(_) => out.already_stored += 1,
                None => {
                    if let Some(t) = &tip {
                        if m.height != t.height + 1 || m.prev_hash != t.hash {
                            return Err(StoreError::Conflict(format!(
                                "block {} at height {} does not extend the stored tip {} at height {}",
                                m.hash, m.height, t.hash, t.height
                            )));
                        }
                    }
                    stored.insert(m.height, m.hash);
                    new_blocks.push(*m);
                    tip = Some(*m);
                    out.blocks += 1;
                }
            }
        }
        write_rows(
            &mut tx,
            "INSERT INTO blocks (height, hash, prev_hash, time) VALUES ",
            4,
            "",
            &new_blocks,
            |q, m| {
                Ok(q.bind(i64::from(m.height))
                    .bind(m.hash.as_byte_array().as_slice())
                    .bind(m.prev_hash.as_byte_array().as_slice())
                    .bind(i64::from(m.time)))
            },
        )
        .await?;
        // Transactions and outputs of stored blocks too: a wallet added later is scanned
        // over blocks the index already holds, and what is there already is left alone.
        let txs: Vec<(u32, &tesoro_core::chain::TxRecord)> = deltas
            .iter()
            .flat_map(|d| d.txs.iter().map(move |t| (d.meta.height, t)))
            .collect();
        write_rows(
            &mut tx,
            "INSERT INTO txs (txid, height, tx_index, raw) VALUES ",
            4,
            " ON CONFLICT (txid) DO NOTHING",
            &txs,
            |q, (height, t)| {
                Ok(q.bind(t.txid.as_byte_array().as_slice())
                    .bind(i64::from(*height))
                    .bind(i64::from(t.tx_index))
                    .bind(t.raw.as_slice()))
            },
        )
        .await?;
        let created: Vec<(u32, &tesoro_core::chain::WatchedOutput)> = deltas
            .iter()
            .flat_map(|d| d.created.iter().map(move |o| (d.meta.height, o)))
            .collect();
        let written = write_rows(
            &mut tx,
            "INSERT INTO outputs (txid, vout, value, script_pubkey, wallet_id, keychain, \
             derivation_index, coinbase, height, tx_index) VALUES ",
            10,
            " ON CONFLICT (txid, vout) DO NOTHING",
            &created,
            |q, (height, o)| {
                let (keychain, index) = match o.owner.derivation {
                    Some(dv) => (Some(i64::from(dv.keychain)), Some(i64::from(dv.index))),
                    None => (None, None),
                };
                let value = i64::try_from(o.value.to_sat())
                    .map_err(|_| StoreError::Corrupt(format!("value {}", o.value)))?;
                Ok(q.bind(o.outpoint.txid.as_byte_array().as_slice())
                    .bind(i64::from(o.outpoint.vout))
                    .bind(value)
                    .bind(o.script_pubkey.as_bytes())
                    .bind(owner_wallet(&o.owner)?)
                    .bind(keychain)
                    .bind(index)
                    .bind(i64::from(o.coinbase))
                    .bind(i64::from(*height))
                    .bind(i64::from(o.tx_index)))
            },
        )
        .await?;
        out.outputs += written as u32;
        // Spends after every output of the batch is in, many rows a statement. Each must
        // mark a stored, unspent output; when fewer rows changed than spends were given,
        // each spend is looked at to name the one that did not.
        let spends: Vec<(
            &tesoro_core::chain::BlockMeta,
            &tesoro_core::chain::WatchedSpend,
        )> = deltas
            .iter()
            .flat_map(|d| d.spent.iter().map(move |s| (&d.meta, s)))
            .collect();
        let marked = write_rows(
            &mut tx,
            "UPDATE outputs SET spent_txid = v.column1, spent_vin = v.column2, \
             spent_height = v.column3 FROM (VALUES ",
            5,
            ") AS v WHERE outputs.txid = v.column4 AND outputs.vout = v.column5 \
             AND outputs.spent_txid IS NULL",
            &spends,
            |q, (m, s)| {
                Ok(q.bind(s.txid.as_byte_array().as_slice())
                    .bind(i64::from(s.vin))
                    .bind(i64::from(m.height))
                    .bind(s.outpoint.txid.as_byte_array().as_slice())
                    .bind(i64::from(s.outpoint.vout)))
            },
        )
        .await?;
        out.spends += marked as u32;
        if marked != spends.len() as u64 {
            for (m, s) in &spends {
                // Already recorded by this very spend (a re-run, or just now) is fine;
                // anything else is a double spend or a spend of an output we never saw:
                // refuse the batch.
                let row = sqlx::query(
                    "SELECT spent_txid, spent_vin, spent_height FROM outputs \
                     WHERE txid = $1 AND vout = $2",
                )
                .bind(s.outpoint.txid.as_byte_array().as_slice())
                .bind(i64::from(s.outpoint.vout))
                .fetch_optional(&mut *tx)
                .await?;
                let same = match &row {
                    Some(r) => {
                        let t: Option<Vec<u8>> = r.try_get("spent_txid")?;
                        let v: Option<i64> = r.try_get("spent_vin")?;
                        let h: Option<i64> = r.try_get("spent_height")?;
                        t.as_deref() == Some(s.txid.as_byte_array().as_slice())
                            && v == Some(i64::from(s.vin))
                            && h == Some(i64::from(m.height))
                    }
                    None => false,
                };
                if !same {
                    return Err(StoreError::Conflict(format!(
                        "block {} at height {}: tx {} input {} spends {} which the index {}",
                        m.hash,
                        m.height,
                        s.txid,
                        s.vin,
                        s.outpoint,
                        if row.is_some() {
                            "records as spent elsewhere"
                        } else {
                            "does not hold"
                        }
                    )));
                }
            }
        }
        for w in wallets {
            sqlx::query(
                "INSERT INTO wallet_sync (wallet_id, synced_to) VALUES ($1, $2) \
                 ON CONFLICT (wallet_id) DO UPDATE SET synced_to = excluded.synced_to",
            )
            .bind(*w)
            .bind(i64::from(last.meta.height))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Undoes every block above `height` (all blocks when `None`), exactly: spends recorded
    /// above it are cleared, outputs and transactions created above it are removed.
    /// Returns the number of blocks removed.
    pub async fn rollback_to(&self, height: Option<u32>) -> Result<u32> {
        let h: i64 = height.map(i64::from).unwrap_or(-1);
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "UPDATE outputs SET spent_txid = NULL, spent_vin = NULL, spent_height = NULL \
             WHERE spent_height > $1",
        )
        .bind(h)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM outputs WHERE height > $1")
            .bind(h)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM txs WHERE height > $1")
            .bind(h)
            .execute(&mut *tx)
            .await?;
        let r = sqlx::query("DELETE FROM blocks WHERE height > $1")
            .bind(h)
            .execute(&mut *tx)
            .await?;
        if h < 0 {
            sqlx::query("DELETE FROM wallet_sync")
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query("UPDATE wallet_sync SET synced_to = $1 WHERE synced_to > $1")
                .bind(h)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(r.rows_affected() as u32)
    }

    /// Watched outputs unspent at `height` (at the tip when `None`), optionally for some
    /// wallets only, ordered by height and outpoint.
    pub async fn utxos_at(
        &self,
        height: Option<u32>,
        wallets: Option<&[i64]>,
    ) -> Result<Vec<UtxoRow>> {
        let h: i64 = height.map(i64::from).unwrap_or(i64::MAX);
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {UTXO_COLUMNS} FROM outputs WHERE height <= $1 \
             AND (spent_height IS NULL OR spent_height > $1) ORDER BY height, tx_index, txid, vout"
        )))
        .bind(h)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut u = utxo_row(r)?;
            if wallets.is_some_and(|w| !w.contains(&u.wallet_id)) {
                continue;
            }
            // At a past height a later spend is not yet a spend.
            if u.spent.is_some_and(|(_, sh)| i64::from(sh) > h) {
                u.spent = None;
            }
            out.push(u);
        }
        Ok(out)
    }

    /// Every watched output ever created (spent or not), for the scanner's outpoint set and
    /// for audits.
    pub async fn all_outputs(&self) -> Result<Vec<UtxoRow>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {UTXO_COLUMNS} FROM outputs ORDER BY height, tx_index, txid, vout"
        )))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(utxo_row).collect()
    }

    /// Highest used derivation index per (wallet, keychain): the watch set derives
    /// `last used + gap limit` scripts from it.
    pub async fn last_used_indexes(&self) -> Result<Vec<(i64, u32, u32)>> {
        let rows = sqlx::query(
            "SELECT wallet_id, keychain, MAX(derivation_index) AS idx FROM outputs \
             WHERE keychain IS NOT NULL GROUP BY wallet_id, keychain ORDER BY wallet_id, keychain",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("wallet_id")?,
                    u32_col(r, "keychain")?,
                    u32_col(r, "idx")?,
                ))
            })
            .collect()
    }

    /// Transactions touching the given wallets (all when `None`), oldest first.
    pub async fn history(&self, wallets: Option<&[i64]>) -> Result<Vec<TxTouch>> {
        let rows = sqlx::query(
            "SELECT o.txid AS txid, o.height AS height, o.wallet_id AS wallet_id, o.value AS received, 0 AS sent, o.tx_index AS tx_index \
             FROM outputs o \
             UNION ALL \
             SELECT o.spent_txid AS txid, o.spent_height AS height, o.wallet_id AS wallet_id, 0 AS received, o.value AS sent, 0 AS tx_index \
             FROM outputs o WHERE o.spent_txid IS NOT NULL",
        )
        .fetch_all(&self.pool)
        .await?;
        let times = sqlx::query("SELECT height, time FROM blocks")
            .fetch_all(&self.pool)
            .await?;
        let mut time_of = std::collections::HashMap::with_capacity(times.len());
        for r in &times {
            time_of.insert(u32_col(r, "height")?, u32_col(r, "time")?);
        }
        let mut by_tx: std::collections::BTreeMap<(u32, [u8; 32]), TxTouch> = Default::default();
        for r in &rows {
            let wallet: i64 = r.try_get("wallet_id")?;
            if wallets.is_some_and(|w| !w.contains(&wallet)) {
                continue;
            }
            let txid = hash32(r, "txid")?;
            let height = u32_col(r, "height")?;
            let received: i64 = r.try_get("received")?;
            let sent: i64 = r.try_get("sent")?;
            let e = by_tx.entry((height, txid)).or_insert_with(|| TxTouch {
                txid: Txid::from_byte_array(txid),
                height,
                time: time_of.get(&height).copied().unwrap_or(0),
                received: 0,
                sent: 0,
            });
            e.received += received as u64;
            e.sent += sent as u64;
        }
        Ok(by_tx.into_values().collect())
    }

    /// Block time of every stored height.
    pub async fn block_times(&self) -> Result<std::collections::HashMap<u32, u32>> {
        let rows = sqlx::query("SELECT height, time FROM blocks")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((u32_col(r, "height")?, u32_col(r, "time")?)))
            .collect()
    }

    /// How far each wallet has been scanned (wallets never scanned are absent).
    pub async fn wallet_sync_heights(&self) -> Result<std::collections::HashMap<i64, u32>> {
        let rows = sqlx::query("SELECT wallet_id, synced_to FROM wallet_sync")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("wallet_id")?, u32_col(r, "synced_to")?)))
            .collect()
    }

    /// The raw bytes of a stored transaction.
    pub async fn raw_tx(&self, txid: &Txid) -> Result<Option<Vec<u8>>> {
        let row = sqlx::query("SELECT raw FROM txs WHERE txid = $1")
            .bind(txid.as_byte_array().as_slice())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get("raw").map_err(StoreError::from))
            .transpose()
    }
}
