//! The generator: runs a scenario block by block, keeping its own UTXO book (the source of the
//! expected balances, independent of any scanner), signs its own spends, and hands finished
//! blocks to the blk writer.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use bitcoin::hashes::Hash;
use bitcoin::secp256k1::{All, Secp256k1};
use bitcoin::{
    absolute, transaction, Address, Amount, BlockHash, Network, OutPoint, ScriptBuf, Sequence,
    Transaction, TxIn, TxOut, Witness,
};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::background::{Background, BgCoin, BgKind};
use crate::block::Assembly;
use crate::error::{io, GenError, Result};
use crate::keys::{secret_for, AccountKeys, Kind, Spender};
use crate::scenario::{Action, Scenario};
use crate::writer::BlkWriter;

/// Coinbase outputs can be spent 100 blocks later.
const COINBASE_MATURITY: u32 = 100;
/// Smallest output the generator creates (Core's dust limit for P2PKH is 546).
const DUST: u64 = 546;

/// Who owns a coin in the generator's book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Owner {
    /// The generator's miner/faucet: the outside world that sells to the reserve.
    Faucet,
    /// A wallet's derived key.
    Wallet { w: usize, keychain: u32, index: u32 },
    /// A bare address.
    Address(usize),
    /// An outside party (unwatched).
    Party(usize),
}

#[derive(Debug, Clone)]
struct Coin {
    value: u64,
    owner: Owner,
    script: ScriptBuf,
    coinbase_height: Option<u32>,
}

#[derive(Clone)]
struct State {
    height: u32,
    tip: BlockHash,
    /// Hash of each block of the current branch, by height.
    branch: Vec<BlockHash>,
    coins: BTreeMap<OutPoint, Coin>,
    next_index: Vec<[u32; 2]>,
    last_used: Vec<[Option<u32>; 2]>,
    checkpoints: BTreeMap<u32, Checkpoint>,
    bg: Background,
    bg_seeded: bool,
}

/// Expected balances at one height of the final chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Height.
    pub height: u32,
    /// Block hash at that height.
    pub hash: BlockHash,
    /// Balance in sats per owner name (wallets and addresses), zero balances included.
    pub balances: BTreeMap<String, u64>,
    /// Balance in sats per address (every watched address holding coins).
    pub addresses: BTreeMap<String, u64>,
    /// Number of watched unspent outputs.
    pub utxos: usize,
}

/// A wallet as written to expected.json: public descriptors only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedWallet {
    /// Name.
    pub name: String,
    /// Script type.
    pub kind: Kind,
    /// External (receive) descriptor, public keys only, with checksum.
    pub external: String,
    /// Internal (change) descriptor.
    pub internal: String,
    /// Gap limit to watch with.
    pub gap_limit: u32,
    /// Highest external index used on the final chain.
    pub last_used_external: Option<u32>,
    /// Highest internal index used on the final chain.
    pub last_used_internal: Option<u32>,
}

/// A bare address as written to expected.json.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedAddress {
    /// Name.
    pub name: String,
    /// Script type.
    pub kind: Kind,
    /// The address (regtest).
    pub address: String,
}

/// Contents of `expected.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expected {
    /// Always "regtest".
    pub network: String,
    /// Scenario seed.
    pub seed: u64,
    /// Tip height of the best chain.
    pub tip_height: u32,
    /// Tip hash.
    pub tip_hash: BlockHash,
    /// Hashes of the stale blocks written to the files.
    pub stale_blocks: Vec<BlockHash>,
    /// The xor.dat key, hex.
    pub xor_key: String,
    /// blk files written, in order.
    pub files: Vec<String>,
    /// Blocks written (best chain + stale + genesis).
    pub blocks_written: u64,
    /// Bytes of records written.
    pub bytes_written: u64,
    /// Watched wallets.
    pub wallets: Vec<ExpectedWallet>,
    /// Watched bare addresses.
    pub addresses: Vec<ExpectedAddress>,
    /// Outside parties (unwatched), for counterparty rules.
    #[serde(default)]
    pub parties: Vec<ExpectedAddress>,
    /// Expected balances at the chosen heights (and the tip), on the final chain.
    pub checkpoints: Vec<Checkpoint>,
}

impl Expected {
    /// Read an `expected.json`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        serde_json::from_str(&text).map_err(|e| GenError::Parse(e.to_string()))
    }
}

/// Where a generated chain was written.
#[derive(Debug, Clone)]
pub struct Generated {
    /// `<out>/blocks`.
    pub blocks_dir: PathBuf,
    /// `<out>/expected.json`.
    pub expected_path: PathBuf,
    /// What was written there.
    pub expected: Expected,
}

struct Gen<'s> {
    sc: &'s Scenario,
    secp: Secp256k1<All>,
    accounts: Vec<AccountKeys>,
    address_spenders: Vec<Spender>,
    party_spenders: Vec<Spender>,
    faucet: Spender,
    spenders: HashMap<Owner, Spender>,
    bg_rng: ChaCha8Rng,
    outside_count: u64,
    tag: u32,
}

fn xor_key(sc: &Scenario) -> Result<[u8; 8]> {
    let k = sc.layout.xor_key.trim();
    match k {
        "none" => Ok([0u8; 8]),
        "random" => {
            let mut rng = ChaCha8Rng::seed_from_u64(sc.seed ^ 0x0b5c_u64);
            let mut key = [0u8; 8];
            while key == [0u8; 8] {
                rng.fill_bytes(&mut key);
            }
            Ok(key)
        }
        hex => {
            let bytes: Vec<u8> = (0..hex.len())
                .step_by(2)
                .map(|i| {
                    hex.get(i..i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect::<Option<_>>()
                .ok_or_else(|| GenError::Invalid(format!("layout.xor_key {hex:?} is not hex")))?;
            bytes.try_into().map_err(|_| {
                GenError::Invalid("layout.xor_key must be 8 bytes (16 hex digits)".into())
            })
        }
    }
}

/// Generate the chain of `scenario` into `out_dir` (`blocks/` and `expected.json`).
pub fn generate(scenario: &Scenario, out_dir: &Path) -> Result<Generated> {
    scenario.validate()?;
    let scenario = &scenario.resolved()?;
    let secp = Secp256k1::new();
    let accounts = scenario
        .wallets
        .iter()
        .map(|w| AccountKeys::new(&secp, scenario.seed, &w.name, w.kind))
        .collect::<Result<Vec<_>>>()?;
    let address_spenders = scenario
        .addresses
        .iter()
        .map(|a| {
            let n = if matches!(a.kind, Kind::WshMulti | Kind::ShMulti) {
                3
            } else {
                1
            };
            let secrets = (0..n)
                .map(|c| secret_for(scenario.seed, &format!("address/{}/{c}", a.name)))
                .collect::<Result<Vec<_>>>()?;
            Ok(Spender::new(&secp, a.kind, secrets))
        })
        .collect::<Result<Vec<_>>>()?;
    let party_spenders = scenario
        .parties
        .iter()
        .map(|p| {
            let sk = secret_for(scenario.seed, &format!("party/{}", p.name))?;
            Ok(Spender::new(&secp, Kind::Wpkh, vec![sk]))
        })
        .collect::<Result<Vec<_>>>()?;
    let faucet = Spender::new(
        &secp,
        Kind::Wpkh,
        vec![secret_for(scenario.seed, "faucet")?],
    );
    let mut g = Gen {
        sc: scenario,
        secp,
        accounts,
        address_spenders,
        party_spenders,
        faucet,
        spenders: HashMap::new(),
        bg_rng: ChaCha8Rng::seed_from_u64(scenario.seed.wrapping_add(0xb6)),
        outside_count: 0,
        tag: 0,
    };
    g.run(out_dir)
}

impl Gen<'_> {
    fn name_of(&self, owner: Owner) -> Option<&str> {
        match owner {
            Owner::Faucet | Owner::Party(_) => None,
            Owner::Wallet { w, .. } => Some(&self.sc.wallets[w].name),
            Owner::Address(a) => Some(&self.sc.addresses[a].name),
        }
    }

    /// Resolve a name to a wallet or address index.
    fn target(&self, name: &str, event: usize, height: u32) -> Result<Target> {
        if let Some(w) = self.sc.wallets.iter().position(|w| w.name == name) {
            return Ok(Target::Wallet(w));
        }
        if let Some(a) = self.sc.addresses.iter().position(|a| a.name == name) {
            return Ok(Target::Address(a));
        }
        Err(GenError::Event {
            event,
            height,
            reason: format!("no wallet or address named {name:?}"),
        })
    }

    /// Resolve an outside party's name.
    fn party(&self, name: &str, event: usize, height: u32) -> Result<usize> {
        self.sc
            .parties
            .iter()
            .position(|p| p.name == name)
            .ok_or_else(|| GenError::Event {
                event,
                height,
                reason: format!("no party named {name:?}"),
            })
    }

    fn spender(&mut self, owner: Owner) -> Result<&Spender> {
        if !self.spenders.contains_key(&owner) {
            let s = match owner {
                Owner::Faucet => self.faucet.clone(),
                Owner::Address(a) => self.address_spenders[a].clone(),
                Owner::Party(p) => self.party_spenders[p].clone(),
                Owner::Wallet { w, keychain, index } => {
                    self.accounts[w].spender(&self.secp, keychain, index)?
                }
            };
            self.spenders.insert(owner, s);
        }
        self.spenders
            .get(&owner)
            .ok_or_else(|| GenError::Key("spender".into()))
    }

    /// A fresh receiving owner + script for `t` (next external index unless `index` is given).
    fn receive_to(
        &mut self,
        st: &mut State,
        t: Target,
        index: Option<u32>,
        keychain: u32,
    ) -> Result<(Owner, ScriptBuf)> {
        let owner = match t {
            Target::Address(a) => Owner::Address(a),
            Target::Wallet(w) => {
                let k = keychain as usize;
                let i = index.unwrap_or(st.next_index[w][k]);
                st.next_index[w][k] = st.next_index[w][k].max(i + 1);
                st.last_used[w][k] = Some(st.last_used[w][k].map_or(i, |u| u.max(i)));
                Owner::Wallet {
                    w,
                    keychain,
                    index: i,
                }
            }
        };
        let script = self.spender(owner)?.script_pubkey.clone();
        Ok((owner, script))
    }

    fn outside_script(&mut self) -> Result<ScriptBuf> {
        self.outside_count += 1;
        let sk = secret_for(self.sc.seed, &format!("outside/{}", self.outside_count))?;
        Ok(Spender::new(&self.secp, Kind::Wpkh, vec![sk]).script_pubkey)
    }

    /// Spendable coins of `owners` at `height`, largest first (deterministic tie-break).
    fn spendable(st: &State, owners: &dyn Fn(Owner) -> bool, height: u32) -> Vec<(OutPoint, Coin)> {
        let mut v: Vec<(OutPoint, Coin)> = st
            .coins
            .iter()
            .filter(|(_, c)| owners(c.owner))
            .filter(|(_, c)| {
                c.coinbase_height
                    .is_none_or(|h| height >= h + COINBASE_MATURITY)
            })
            .map(|(o, c)| (*o, c.clone()))
            .collect();
        v.sort_by(|a, b| b.1.value.cmp(&a.1.value).then(a.0.cmp(&b.0)));
        v
    }

    fn fee(n_in: usize, n_out: usize) -> u64 {
        (110 * n_in as u64 + 45 * n_out as u64 + 12) * 2
    }

    /// Build, sign, book and add to `asm` a transaction spending `inputs` to `outputs`, with
    /// change (if above dust) to `change`.
    fn spend(
        &mut self,
        st: &mut State,
        asm: &mut Assembly,
        inputs: Vec<(OutPoint, Coin)>,
        outputs: Vec<(Owner, ScriptBuf, u64)>,
        change: Option<(Owner, ScriptBuf)>,
        external: Vec<(ScriptBuf, u64)>,
    ) -> Result<()> {
        let total_in: u64 = inputs.iter().map(|(_, c)| c.value).sum();
        let total_out: u64 =
            outputs.iter().map(|o| o.2).sum::<u64>() + external.iter().map(|o| o.1).sum::<u64>();
        let n_out = outputs.len() + external.len() + usize::from(change.is_some());
        let fee = Self::fee(inputs.len(), n_out);
        let change_value = total_in.checked_sub(total_out + fee).ok_or_else(|| {
            GenError::Invalid(format!(
                "insufficient funds: {total_in} < {total_out} + fee {fee}"
            ))
        })?;
        let mut tx = Transaction {
            version: transaction::Version::TWO,
            lock_time: absolute::LockTime::ZERO,
            input: inputs
                .iter()
                .map(|(op, _)| TxIn {
                    previous_output: *op,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::ENABLE_RBF_NO_LOCKTIME,
                    witness: Witness::new(),
                })
                .collect(),
            output: Vec::new(),
        };
        let mut booked: Vec<(u32, Owner, ScriptBuf, u64)> = Vec::new();
        for (owner, script, value) in outputs {
            booked.push((tx.output.len() as u32, owner, script.clone(), value));
            tx.output.push(TxOut {
                value: Amount::from_sat(value),
                script_pubkey: script,
            });
        }
        for (script, value) in external {
            tx.output.push(TxOut {
                value: Amount::from_sat(value),
                script_pubkey: script,
            });
        }
        let mut fee_paid = fee;
        match change {
            Some((owner, script)) if change_value >= DUST => {
                booked.push((tx.output.len() as u32, owner, script.clone(), change_value));
                tx.output.push(TxOut {
                    value: Amount::from_sat(change_value),
                    script_pubkey: script,
                });
            }
            _ => fee_paid += change_value,
        }
        let prevouts: Vec<TxOut> = inputs
            .iter()
            .map(|(_, c)| TxOut {
                value: Amount::from_sat(c.value),
                script_pubkey: c.script.clone(),
            })
            .collect();
        for (i, (_, c)) in inputs.iter().enumerate() {
            let s = self.spender(c.owner)?.clone();
            s.sign(&self.secp, &mut tx, i, &prevouts)?;
        }
        let txid = asm.push_tx(&tx, fee_paid);
        for (op, _) in &inputs {
            st.coins.remove(op);
        }
        for (vout, owner, script, value) in booked {
            st.coins.insert(
                OutPoint { txid, vout },
                Coin {
                    value,
                    owner,
                    script,
                    coinbase_height: None,
                },
            );
        }
        Ok(())
    }

    /// Pick coins of `owners` covering `amount` + fee.
    fn select(
        st: &State,
        owners: &dyn Fn(Owner) -> bool,
        height: u32,
        amount: u64,
        n_out: usize,
    ) -> Option<Vec<(OutPoint, Coin)>> {
        let mut picked = Vec::new();
        let mut sum = 0u64;
        for c in Self::spendable(st, owners, height) {
            sum += c.1.value;
            picked.push(c);
            if sum >= amount + Self::fee(picked.len(), n_out + 1) + DUST {
                return Some(picked);
            }
        }
        None
    }

    fn apply_event(
        &mut self,
        st: &mut State,
        asm: &mut Assembly,
        ev_i: usize,
        height: u32,
        action: &Action,
    ) -> Result<()> {
        let err = |reason: String| GenError::Event {
            event: ev_i,
            height,
            reason,
        };
        match action {
            Action::Receive {
                to,
                amount_sat,
                index,
                from,
            } => {
                let t = self.target(to, ev_i, height)?;
                if index.is_some() && matches!(t, Target::Address(_)) {
                    return Err(err("index only applies to wallets".into()));
                }
                let payer = match from {
                    Some(name) => Some(self.party(name, ev_i, height)?),
                    None => None,
                };
                // A party is funded by the faucet with exactly the payment and its fee, in
                // the same block; its payment then spends that one coin, without change.
                let fund = match payer {
                    Some(_) => *amount_sat + Self::fee(1, 1),
                    None => *amount_sat,
                };
                let inputs = Self::select(st, &|o| o == Owner::Faucet, height, fund, 1)
                    .ok_or_else(|| {
                        err("the faucet has too few mature coins (raise premine)".into())
                    })?;
                if let Some(p) = payer {
                    let script = self.party_spenders[p].script_pubkey.clone();
                    let change = Some((Owner::Faucet, self.faucet.script_pubkey.clone()));
                    self.spend(
                        st,
                        asm,
                        inputs,
                        vec![(Owner::Party(p), script, fund)],
                        change,
                        vec![],
                    )
                    .map_err(|e| err(e.to_string()))?;
                    let coin = Self::spendable(st, &|o| o == Owner::Party(p), height)
                        .into_iter()
                        .find(|(_, c)| c.value == fund)
                        .ok_or_else(|| err("party coin".into()))?;
                    let (owner, script) = self.receive_to(st, t, *index, 0)?;
                    return self
                        .spend(
                            st,
                            asm,
                            vec![coin],
                            vec![(owner, script, *amount_sat)],
                            None,
                            vec![],
                        )
                        .map_err(|e| err(e.to_string()));
                }
                let (owner, script) = self.receive_to(st, t, *index, 0)?;
                let change = Some((Owner::Faucet, self.faucet.script_pubkey.clone()));
                self.spend(
                    st,
                    asm,
                    inputs,
                    vec![(owner, script, *amount_sat)],
                    change,
                    vec![],
                )
                .map_err(|e| err(e.to_string()))
            }
            Action::Send {
                from,
                amount_sat,
                to,
            } => {
                let t = self.target(from, ev_i, height)?;
                let inputs = Self::select(st, &|o| owns(t, o), height, *amount_sat, 1)
                    .ok_or_else(|| err(format!("{from} cannot pay {amount_sat} sat")))?;
                let change = self.receive_to(st, t, None, 1)?;
                let out = match to {
                    Some(name) => {
                        let p = self.party(name, ev_i, height)?;
                        self.party_spenders[p].script_pubkey.clone()
                    }
                    None => self.outside_script()?,
                };
                self.spend(
                    st,
                    asm,
                    inputs,
                    vec![],
                    Some(change),
                    vec![(out, *amount_sat)],
                )
                .map_err(|e| err(e.to_string()))
            }
            Action::Transfer {
                from,
                to,
                amount_sat,
                outputs,
            } => {
                let sources: Vec<Target> = from
                    .iter()
                    .map(|n| self.target(n, ev_i, height))
                    .collect::<Result<_>>()?;
                let dest = self.target(to, ev_i, height)?;
                let n = outputs.unwrap_or(1).max(1) as usize;
                let is_src = |o: Owner| sources.iter().any(|&t| owns(t, o));
                let (inputs, amount, change) = match amount_sat {
                    None => {
                        let inputs = Self::spendable(st, &is_src, height);
                        let total: u64 = inputs.iter().map(|c| c.1.value).sum();
                        let fee = Self::fee(inputs.len(), n);
                        if inputs.is_empty() || total < fee + DUST * n as u64 {
                            return Err(err("nothing to sweep".into()));
                        }
                        (inputs, total - fee, None)
                    }
                    Some(a) => {
                        let inputs = Self::select(st, &is_src, height, *a, n)
                            .ok_or_else(|| err(format!("sources cannot pay {a} sat")))?;
                        let change = self.receive_to(st, sources[0], None, 1)?;
                        (inputs, *a, Some(change))
                    }
                };
                let mut outs = Vec::new();
                let each = amount / n as u64;
                for k in 0..n {
                    let v = if k + 1 == n {
                        amount - each * (n as u64 - 1)
                    } else {
                        each
                    };
                    let (owner, script) = self.receive_to(st, dest, None, 0)?;
                    outs.push((owner, script, v));
                }
                self.spend(st, asm, inputs, outs, change, vec![])
                    .map_err(|e| err(e.to_string()))
            }
            Action::Coinbase { .. } | Action::Reorg { .. } => Ok(()),
        }
    }

    fn checkpoint(&self, st: &State) -> Checkpoint {
        let mut balances: BTreeMap<String, u64> = BTreeMap::new();
        for w in &self.sc.wallets {
            balances.insert(w.name.clone(), 0);
        }
        for a in &self.sc.addresses {
            balances.insert(a.name.clone(), 0);
        }
        let mut addresses: BTreeMap<String, u64> = BTreeMap::new();
        let mut utxos = 0;
        for c in st.coins.values() {
            let Some(name) = self.name_of(c.owner) else {
                continue;
            };
            *balances.entry(name.to_string()).or_insert(0) += c.value;
            let addr = Address::from_script(&c.script, Network::Regtest)
                .map(|a| a.to_string())
                .unwrap_or_else(|_| c.script.to_hex_string());
            *addresses.entry(addr).or_insert(0) += c.value;
            utxos += 1;
        }
        Checkpoint {
            height: st.height,
            hash: st.tip,
            balances,
            addresses,
            utxos,
        }
    }

    fn run(&mut self, out_dir: &Path) -> Result<Generated> {
        let sc = self.sc;
        let blocks_dir = out_dir.join("blocks");
        let key = xor_key(sc)?;
        let mut writer = BlkWriter::new(
            &blocks_dir,
            key,
            sc.layout.max_file_size,
            sc.layout.shuffle_window,
            sc.layout.zero_tail,
            sc.seed,
        )?;
        let genesis = bitcoin::constants::genesis_block(Network::Regtest);
        writer.push(bitcoin::consensus::serialize(&genesis))?;

        // Heights whose state a later reorg rolls back to.
        let mut snapshot_heights = BTreeSet::new();
        let mut max_height = sc.tip_height.max(sc.premine);
        for ev in &sc.events {
            max_height = max_height.max(ev.height);
            if let Action::Reorg { depth } = ev.action {
                if depth == 0 || depth >= ev.height {
                    return Err(GenError::Event {
                        event: 0,
                        height: ev.height,
                        reason: format!("reorg depth {depth} must be in 1..height"),
                    });
                }
                snapshot_heights.insert(ev.height - depth - 1);
            }
        }
        let checkpoints: BTreeSet<u32> = sc.checkpoints.iter().copied().collect();
        let bg_from = sc
            .background
            .as_ref()
            .map(|b| b.from_height.unwrap_or(sc.premine + 1));

        let mut st = State {
            height: 0,
            tip: genesis.block_hash(),
            branch: vec![genesis.block_hash()],
            coins: BTreeMap::new(),
            next_index: vec![[0, 0]; sc.wallets.len()],
            last_used: vec![[None, None]; sc.wallets.len()],
            checkpoints: BTreeMap::new(),
            bg: Background::new(),
            bg_seeded: false,
        };
        if checkpoints.contains(&0) {
            let cp = self.checkpoint(&st);
            st.checkpoints.insert(0, cp);
        }
        let mut snapshots: HashMap<u32, State> = HashMap::new();
        if snapshot_heights.contains(&0) {
            snapshots.insert(0, st.clone());
        }
        let mut stale: Vec<BlockHash> = Vec::new();
        let mut stale_tip = 0u32;
        let mut ev_i = 0usize;

        loop {
            let h = st.height + 1;
            // A reorg scheduled for this height happens before mining it.
            if let Some(ev) = sc.events.get(ev_i) {
                if ev.height < h {
                    return Err(GenError::Event {
                        event: ev_i,
                        height: ev.height,
                        reason: format!(
                            "events must be in height order; the chain is already at {}",
                            st.height
                        ),
                    });
                }
                if let (Action::Reorg { depth }, true) = (&ev.action, ev.height == h) {
                    let fork = h - depth - 1;
                    let restored =
                        snapshots
                            .get(&fork)
                            .cloned()
                            .ok_or_else(|| GenError::Event {
                                event: ev_i,
                                height: h,
                                reason: "no state to roll back to".into(),
                            })?;
                    stale.extend_from_slice(&st.branch[(fork + 1) as usize..]);
                    stale_tip = stale_tip.max(st.height);
                    st = restored;
                    self.tag += 1;
                    ev_i += 1;
                    continue;
                }
            }
            if ev_i >= sc.events.len() && st.height >= max_height && st.height > stale_tip {
                break;
            }

            let mut asm = Assembly::default();
            let mut payees: Vec<(Owner, ScriptBuf)> = Vec::new();
            while let Some(ev) = sc.events.get(ev_i) {
                if ev.height != h || matches!(ev.action, Action::Reorg { .. }) {
                    break;
                }
                if let Action::Coinbase { to } = &ev.action {
                    let t = self.target(to, ev_i, h)?;
                    payees.push(self.receive_to(&mut st, t, None, 0)?);
                }
                self.apply_event(&mut st, &mut asm, ev_i, h, &ev.action)?;
                ev_i += 1;
            }
            if let (Some(from), Some(bg)) = (bg_from, sc.background.as_ref()) {
                if h >= from {
                    if !st.bg_seeded {
                        self.seed_background(&mut st, &mut asm, h)?;
                    }
                    st.bg.fill(
                        &mut asm,
                        bg.block_bytes.saturating_sub(1_000),
                        &mut self.bg_rng,
                    );
                }
            }
            let time = sc.start_time + h * sc.block_interval + self.tag;
            if payees.is_empty() {
                payees.push((Owner::Faucet, self.faucet.script_pubkey.clone()));
            }
            let scripts: Vec<ScriptBuf> = payees.iter().map(|p| p.1.clone()).collect();
            let mined = asm.finish(h, st.tip, time, &scripts, self.tag);
            for (vout, ((owner, script), value)) in
                payees.into_iter().zip(&mined.coinbase_values).enumerate()
            {
                st.coins.insert(
                    OutPoint {
                        txid: mined.coinbase_txid,
                        vout: vout as u32,
                    },
                    Coin {
                        value: *value,
                        owner,
                        script,
                        coinbase_height: Some(h),
                    },
                );
            }
            st.height = h;
            st.tip = mined.hash;
            st.branch.push(mined.hash);
            writer.push(mined.bytes)?;
            if checkpoints.contains(&h) {
                let cp = self.checkpoint(&st);
                st.checkpoints.insert(h, cp);
            }
            if snapshot_heights.contains(&h) {
                snapshots.insert(h, st.clone());
            }
        }

        let tip_cp = self.checkpoint(&st);
        st.checkpoints.insert(st.height, tip_cp);
        let bytes_written_blocks = writer.blocks;
        let bytes_written = writer.bytes;
        let files = writer.finish()?;
        let expected = Expected {
            network: "regtest".into(),
            seed: sc.seed,
            tip_height: st.height,
            tip_hash: st.tip,
            stale_blocks: stale,
            xor_key: key.iter().map(|b| format!("{b:02x}")).collect(),
            files,
            blocks_written: bytes_written_blocks,
            bytes_written,
            wallets: sc
                .wallets
                .iter()
                .enumerate()
                .map(|(i, w)| ExpectedWallet {
                    name: w.name.clone(),
                    kind: w.kind,
                    external: self.accounts[i].descriptor(0),
                    internal: self.accounts[i].descriptor(1),
                    gap_limit: w.gap_limit,
                    last_used_external: st.last_used[i][0],
                    last_used_internal: st.last_used[i][1],
                })
                .collect(),
            addresses: sc
                .addresses
                .iter()
                .enumerate()
                .map(|(i, a)| ExpectedAddress {
                    name: a.name.clone(),
                    kind: a.kind,
                    address: Address::from_script(
                        &self.address_spenders[i].script_pubkey,
                        Network::Regtest,
                    )
                    .map(|x| x.to_string())
                    .unwrap_or_default(),
                })
                .collect(),
            parties: sc
                .parties
                .iter()
                .zip(&self.party_spenders)
                .map(|(p, s)| ExpectedAddress {
                    name: p.name.clone(),
                    kind: Kind::Wpkh,
                    address: Address::from_script(&s.script_pubkey, Network::Regtest)
                        .map(|x| x.to_string())
                        .unwrap_or_default(),
                })
                .collect(),
            checkpoints: st.checkpoints.into_values().collect(),
        };
        let expected_path = out_dir.join("expected.json");
        let text =
            serde_json::to_string_pretty(&expected).map_err(|e| GenError::Parse(e.to_string()))?;
        std::fs::write(&expected_path, text).map_err(io(&expected_path))?;
        Ok(Generated {
            blocks_dir,
            expected_path,
            expected,
        })
    }

    /// Fund the background pool: fan mature faucet coins out to many background outputs.
    fn seed_background(&mut self, st: &mut State, asm: &mut Assembly, h: u32) -> Result<()> {
        let coins = Self::spendable(st, &|o| o == Owner::Faucet, h);
        // Keep half of the faucet's mature coins for scenario events.
        let take = coins.len().div_ceil(2).max(usize::from(!coins.is_empty()));
        for (op, coin) in coins.into_iter().take(take) {
            const FAN: u64 = 2_000;
            let fee = Self::fee(1, FAN as usize);
            let each = coin.value.saturating_sub(fee) / FAN;
            if each < DUST {
                continue;
            }
            let mut tx = Transaction {
                version: transaction::Version::TWO,
                lock_time: absolute::LockTime::ZERO,
                input: vec![TxIn {
                    previous_output: op,
                    script_sig: ScriptBuf::new(),
                    sequence: Sequence::MAX,
                    witness: Witness::new(),
                }],
                output: Vec::new(),
            };
            let mut kinds = Vec::new();
            for _ in 0..FAN {
                let mut h20 = [0u8; 20];
                self.bg_rng.fill_bytes(&mut h20);
                let wpkh = bitcoin::WPubkeyHash::from_byte_array(h20);
                tx.output.push(TxOut {
                    value: Amount::from_sat(each),
                    script_pubkey: ScriptBuf::new_p2wpkh(&wpkh),
                });
                kinds.push(BgKind::P2wpkh);
            }
            let prevouts = vec![TxOut {
                value: Amount::from_sat(coin.value),
                script_pubkey: coin.script.clone(),
            }];
            self.faucet
                .clone()
                .sign(&self.secp, &mut tx, 0, &prevouts)?;
            let txid = asm.push_tx(&tx, coin.value - each * FAN);
            st.coins.remove(&op);
            for (vout, kind) in kinds.into_iter().enumerate() {
                st.bg.pool.push(BgCoin {
                    txid: txid.to_byte_array(),
                    vout: vout as u32,
                    value: each,
                    kind,
                });
            }
        }
        st.bg_seeded = true;
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Wallet(usize),
    Address(usize),
}

fn owns(t: Target, o: Owner) -> bool {
    match (t, o) {
        (Target::Wallet(w), Owner::Wallet { w: x, .. }) => w == x,
        (Target::Address(a), Owner::Address(x)) => a == x,
        _ => false,
    }
}
