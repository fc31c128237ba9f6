//! The chain facts a proof is checked against, from the verifier's own blocks: which outputs
//! paying given scripts were unspent at the pinned height (not at the tip: coins spent after
//! the statement's block still count for it, coins spent before do not).

use std::collections::HashMap;

use bitcoin::{OutPoint, ScriptBuf, TxOut};
use tesoro_chain::{BlocksDir, ChainIndex};

use crate::error::ProofError;

/// Outputs paying any of `scripts` unspent at `height` of `index`'s best chain, found by
/// scanning blocks `from..=height` of `dir` (from genesis for a complete check).
pub fn unspent_at(
    dir: &BlocksDir,
    index: &ChainIndex,
    scripts: &[ScriptBuf],
    from: u32,
    height: u32,
) -> Result<HashMap<OutPoint, TxOut>, ProofError> {
    if scripts.is_empty() {
        return Ok(HashMap::new());
    }
    let found = tesoro_chain::rederive::utxos_at(dir, index, scripts, from, height)
        .map_err(|e| ProofError::Chain(e.to_string()))?;
    Ok(found
        .into_iter()
        .filter_map(|f| {
            scripts.get(f.script).map(|s| {
                (
                    f.outpoint,
                    TxOut {
                        value: f.value,
                        script_pubkey: s.clone(),
                    },
                )
            })
        })
        .collect())
}
