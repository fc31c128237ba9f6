//! Shared by tesoro-proof's tests: a generated regtest chain, the generator's own keys for
//! its owners (tests may sign; the product never sees a key), and proofs made with them.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;

use bitcoin::hashes::{hash160, Hash};
use bitcoin::psbt::Psbt;
use bitcoin::secp256k1::{All, Secp256k1};
use bitcoin::{
    absolute::LockTime, transaction::Version, Address, Amount, Network, OutPoint, PrivateKey,
    PubkeyHash, ScriptBuf, Sequence, Transaction, TxIn, TxOut, Witness,
};
use tesoro_chain::{BlocksDir, ChainIndex};
use tesoro_proof::bip127::Commitment;
use tesoro_testchain::keys::{secret_for, AccountKeys, Spender};
use tesoro_testchain::{generate, Kind, Scenario};

/// A generated chain with every owner's spenders.
pub struct Chain {
    _tmp: tempfile::TempDir,
    pub dir: BlocksDir,
    pub index: ChainIndex,
    pub secp: Secp256k1<All>,
    /// Spender by script: bare addresses and wallet children 0..30 of both keychains.
    pub spenders: HashMap<ScriptBuf, Spender>,
    /// Bare address spenders by name.
    pub named: HashMap<String, Spender>,
    pub expected: tesoro_testchain::Expected,
}

pub fn chain() -> Chain {
    let tmp = tempfile::tempdir().unwrap();
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tesoro-testchain/scenarios/reserve.toml");
    let sc = Scenario::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap();
    let g = generate(&sc, &tmp.path().join("chain")).unwrap();
    let secp = Secp256k1::new();
    let mut spenders = HashMap::new();
    let mut named = HashMap::new();
    for a in &sc.addresses {
        let n = if matches!(a.kind, Kind::WshMulti | Kind::ShMulti) {
            3
        } else {
            1
        };
        let secrets = (0..n)
            .map(|c| secret_for(sc.seed, &format!("address/{}/{c}", a.name)).unwrap())
            .collect();
        let s = Spender::new(&secp, a.kind, secrets);
        spenders.insert(s.script_pubkey.clone(), s.clone());
        named.insert(a.name.clone(), s);
    }
    for w in &sc.wallets {
        let acc = AccountKeys::new(&secp, sc.seed, &w.name, w.kind).unwrap();
        for k in 0..2 {
            for i in 0..30 {
                let s = acc.spender(&secp, k, i).unwrap();
                if i == 0 && k == 0 {
                    named.insert(w.name.clone(), s.clone());
                }
                spenders.insert(s.script_pubkey.clone(), s);
            }
        }
    }
    let dir = BlocksDir::open(&g.blocks_dir, Network::Regtest).unwrap();
    let index = dir.index().unwrap();
    Chain {
        _tmp: tmp,
        dir,
        index,
        secp,
        spenders,
        named,
        expected: g.expected,
    }
}

impl Chain {
    /// Every owner's output unspent at `height`, as the blocks say.
    pub fn unspent(&self, height: u32) -> HashMap<OutPoint, TxOut> {
        let scripts: Vec<ScriptBuf> = self.spenders.keys().cloned().collect();
        tesoro_proof::at_height::unspent_at(&self.dir, &self.index, &scripts, 0, height).unwrap()
    }

    /// Hash of the block at `height`.
    pub fn hash(&self, height: u32) -> String {
        self.index.get(height).unwrap().hash.to_string()
    }
}

/// Regtest address of a script.
pub fn address(s: &ScriptBuf) -> String {
    Address::from_script(s, Network::Regtest)
        .unwrap()
        .to_string()
}

/// WIF of each secret (what a wallet would hold; here only to sign in tests).
pub fn wifs(s: &Spender) -> Vec<String> {
    s.secrets
        .iter()
        .map(|k| PrivateKey::new(*k, Network::Regtest).to_wif())
        .collect()
}

/// The sorted 2-of-3 multisig script of a multisig spender.
pub fn multisig_script(s: &Spender) -> ScriptBuf {
    let mut keys: Vec<[u8; 33]> = s.pubkeys.iter().map(|k| k.to_bytes()).collect();
    keys.sort();
    let mut b = bitcoin::script::Builder::new().push_int(2);
    for k in &keys {
        b = b.push_slice(k);
    }
    b.push_int(keys.len() as i64)
        .push_opcode(bitcoin::opcodes::all::OP_CHECKMULTISIG)
        .into_script()
}

/// bdk-reserves' burn output: P2PKH of HASH160([0]).
pub fn burn_script() -> ScriptBuf {
    ScriptBuf::new_p2pkh(&PubkeyHash::from_raw_hash(hash160::Hash::hash(&[0])))
}

/// The commitment input's stand-in spent output, as bdk-reserves shows it to signers.
pub fn commitment_prevout() -> TxOut {
    TxOut {
        value: Amount::ZERO,
        script_pubkey: bitcoin::script::Builder::new()
            .push_opcode(bitcoin::opcodes::OP_TRUE)
            .into_script(),
    }
}

/// A signed BIP-127 PSBT over `message` spending `coins` (each signed by its spender).
pub fn reserves_psbt(
    chain: &Chain,
    message: &str,
    commitment: Commitment,
    coins: &[(OutPoint, TxOut)],
) -> Psbt {
    let mut tx = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: Vec::new(),
        output: vec![TxOut {
            value: coins.iter().map(|(_, o)| o.value).sum(),
            script_pubkey: burn_script(),
        }],
    };
    tx.input.push(TxIn {
        previous_output: OutPoint::new(commitment.txid(message), 0),
        sequence: Sequence::MAX,
        ..Default::default()
    });
    for (op, _) in coins {
        tx.input.push(TxIn {
            previous_output: *op,
            sequence: Sequence::MAX,
            ..Default::default()
        });
    }
    let mut prevouts = vec![commitment_prevout()];
    prevouts.extend(coins.iter().map(|(_, o)| o.clone()));
    let unsigned = tx.clone();
    for (i, (_, o)) in coins.iter().enumerate() {
        let s = chain
            .spenders
            .get(&o.script_pubkey)
            .expect("a coin of a known owner");
        s.sign(&chain.secp, &mut tx, i + 1, &prevouts).unwrap();
    }
    to_psbt(unsigned, &tx, &prevouts)
}

/// A PSBT of `unsigned` carrying `signed`'s final scripts and the spent outputs.
pub fn to_psbt(unsigned: Transaction, signed: &Transaction, prevouts: &[TxOut]) -> Psbt {
    let mut psbt = Psbt::from_unsigned_tx(unsigned).unwrap();
    for (i, pin) in psbt.inputs.iter_mut().enumerate() {
        pin.witness_utxo = Some(prevouts[i].clone());
        if i == 0 {
            pin.final_script_sig = Some(ScriptBuf::new());
            continue;
        }
        let txin = &signed.input[i];
        if !txin.script_sig.is_empty() {
            pin.final_script_sig = Some(txin.script_sig.clone());
        }
        if !txin.witness.is_empty() {
            pin.final_script_witness = Some(txin.witness.clone());
        }
    }
    psbt
}

/// Empty witness helper.
pub fn no_witness() -> Witness {
    Witness::new()
}
