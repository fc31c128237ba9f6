//! Re-deriving holdings from a node's own blocks, independently of any database: what a
//! verifier runs to check a statement it received.

use std::collections::HashMap;

use bitcoin::{Amount, OutPoint, ScriptBuf};
use tesoro_core::chain::{BlockDelta, ScriptOwner};

use crate::blocksdir::{BlocksDir, ChainIndex};
use crate::error::{ChainError, Result};
use crate::scanner::{ScanOptions, Scanner};
use crate::watch::WatchSet;

/// An output found unspent at the height asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FoundUtxo {
    /// Position of its script in the list given.
    pub script: usize,
    /// Outpoint.
    pub outpoint: OutPoint,
    /// Value.
    pub value: Amount,
    /// Height of the block that created it.
    pub height: u32,
}

/// Unspent outputs paying any of `scripts` at `height` of `index`'s best chain, found by
/// scanning blocks `from..=height` (from genesis for a complete check).
pub fn utxos_at(
    dir: &BlocksDir,
    index: &ChainIndex,
    scripts: &[ScriptBuf],
    from: u32,
    height: u32,
) -> Result<Vec<FoundUtxo>> {
    if height > index.tip_height() {
        return Err(ChainError::HeightPastTip {
            height,
            tip: index.tip_height(),
        });
    }
    let mut watch = WatchSet::new();
    watch.add_scripts(
        scripts
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), ScriptOwner::bare(i as u64))),
    );
    let mut created_at: HashMap<OutPoint, u32> = HashMap::new();
    {
        let pending = dir
            .pending_from(index, from)?
            .take_while(|b| b.block().height <= height);
        Scanner::new(&mut watch)
            .with_options(ScanOptions::default())
            .scan(
                pending,
                |d: BlockDelta| -> std::result::Result<(), String> {
                    for o in &d.created {
                        created_at.insert(o.outpoint, d.meta.height);
                    }
                    for s in &d.spent {
                        created_at.remove(&s.outpoint);
                    }
                    Ok(())
                },
            )?;
    }
    let mut out: Vec<FoundUtxo> = watch
        .outpoints()
        .iter()
        .map(|(op, u)| FoundUtxo {
            script: u.owner.owner as usize,
            outpoint: *op,
            value: u.value,
            height: created_at.get(op).copied().unwrap_or(0),
        })
        .collect();
    out.sort();
    Ok(out)
}
