//! Deterministic keys, scripts, public descriptors and real signatures for the generator's own
//! wallets. Everything derives from the scenario seed and a name, so the same scenario always
//! gives the same keys; only the *public* descriptors ever leave the generator.

use bitcoin::bip32::{ChildNumber, DerivationPath, Xpriv, Xpub};
use bitcoin::hashes::{sha256, Hash};
use bitcoin::key::{Keypair, TapTweak};
use bitcoin::secp256k1::{All, Message, Secp256k1, SecretKey};
use bitcoin::sighash::{Prevouts, SighashCache, TapSighashType};
use bitcoin::{
    CompressedPublicKey, EcdsaSighashType, Network, PublicKey, ScriptBuf, Transaction, TxOut,
    Witness, XOnlyPublicKey,
};
use serde::{Deserialize, Serialize};

use crate::error::{GenError, Result};

/// Script type of a wallet or a bare address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// P2WPKH (`wpkh(...)`, BIP84).
    Wpkh,
    /// P2TR key path (`tr(...)`, BIP86).
    Tr,
    /// P2PKH (`pkh(...)`, BIP44).
    Pkh,
    /// P2SH-P2WPKH (`sh(wpkh(...))`, BIP49).
    ShWpkh,
    /// 2-of-3 P2WSH sorted multisig (`wsh(sortedmulti(2,...))`, BIP48).
    WshMulti,
    /// 2-of-3 P2SH sorted multisig (`sh(sortedmulti(2,...))`), the classic published reserve
    /// address.
    ShMulti,
}

impl Kind {
    fn cosigners(self) -> u32 {
        match self {
            Kind::WshMulti | Kind::ShMulti => 3,
            _ => 1,
        }
    }

    fn account_path(self) -> &'static str {
        match self {
            Kind::Wpkh => "84'/1'/0'",
            Kind::Tr => "86'/1'/0'",
            Kind::Pkh => "44'/1'/0'",
            Kind::ShWpkh => "49'/1'/0'",
            Kind::WshMulti => "48'/1'/0'/2'",
            Kind::ShMulti => "45'/1'/0'",
        }
    }
}

/// One derived (or bare) spendable key set with its script.
#[derive(Debug, Clone)]
pub struct Spender {
    /// Script type.
    pub kind: Kind,
    /// Secret keys (1, or 3 cosigners for multisig; the first two sign).
    pub secrets: Vec<SecretKey>,
    /// Matching compressed public keys, in the same order.
    pub pubkeys: Vec<CompressedPublicKey>,
    /// The output script.
    pub script_pubkey: ScriptBuf,
}

/// A wallet's account keys (one per cosigner) from which both keychains derive.
#[derive(Debug, Clone)]
pub struct AccountKeys {
    kind: Kind,
    accounts: Vec<(Xpriv, Xpub, String)>,
}

fn seed_bytes(seed: u64, label: &str) -> [u8; 32] {
    let mut data = b"tesoro-testchain/v1/".to_vec();
    data.extend_from_slice(&seed.to_le_bytes());
    data.extend_from_slice(label.as_bytes());
    sha256::Hash::hash(&data).to_byte_array()
}

/// A secret key from the seed and a label (for the faucet and outside payees).
pub fn secret_for(seed: u64, label: &str) -> Result<SecretKey> {
    SecretKey::from_slice(&seed_bytes(seed, label)).map_err(|e| GenError::Key(e.to_string()))
}

impl AccountKeys {
    /// Derive the account keys of wallet `name` of `kind` from the scenario `seed`.
    pub fn new(secp: &Secp256k1<All>, seed: u64, name: &str, kind: Kind) -> Result<Self> {
        let path: DerivationPath = format!("m/{}", kind.account_path())
            .parse()
            .map_err(|e: bitcoin::bip32::Error| GenError::Key(e.to_string()))?;
        let mut accounts = Vec::new();
        for c in 0..kind.cosigners() {
            let master = Xpriv::new_master(
                Network::Regtest,
                &seed_bytes(seed, &format!("wallet/{name}/{c}")),
            )
            .map_err(|e| GenError::Key(e.to_string()))?;
            let fp = master.fingerprint(secp);
            let account = master
                .derive_priv(secp, &path)
                .map_err(|e| GenError::Key(e.to_string()))?;
            let xpub = Xpub::from_priv(secp, &account);
            let origin = format!("[{fp}/{}]", kind.account_path());
            accounts.push((account, xpub, origin));
        }
        Ok(Self { kind, accounts })
    }

    /// The public descriptor of `keychain` (0 external, 1 internal), with checksum.
    pub fn descriptor(&self, keychain: u32) -> String {
        let keys: Vec<String> = self
            .accounts
            .iter()
            .map(|(_, xpub, origin)| format!("{origin}{xpub}/{keychain}/*"))
            .collect();
        let body = match self.kind {
            Kind::Wpkh => format!("wpkh({})", keys[0]),
            Kind::Tr => format!("tr({})", keys[0]),
            Kind::Pkh => format!("pkh({})", keys[0]),
            Kind::ShWpkh => format!("sh(wpkh({}))", keys[0]),
            Kind::WshMulti => format!("wsh(sortedmulti(2,{}))", keys.join(",")),
            Kind::ShMulti => format!("sh(sortedmulti(2,{}))", keys.join(",")),
        };
        let sum = descriptor_checksum(&body).unwrap_or_default();
        format!("{body}#{sum}")
    }

    /// Keys and script of child `index` of `keychain`.
    pub fn spender(&self, secp: &Secp256k1<All>, keychain: u32, index: u32) -> Result<Spender> {
        let path = [
            ChildNumber::from_normal_idx(keychain).map_err(|e| GenError::Key(e.to_string()))?,
            ChildNumber::from_normal_idx(index).map_err(|e| GenError::Key(e.to_string()))?,
        ];
        let mut secrets = Vec::new();
        for (account, _, _) in &self.accounts {
            let child = account
                .derive_priv(secp, &path)
                .map_err(|e| GenError::Key(e.to_string()))?;
            secrets.push(child.private_key);
        }
        Ok(Spender::new(secp, self.kind, secrets))
    }
}

impl Spender {
    /// Build from secret keys.
    pub fn new(secp: &Secp256k1<All>, kind: Kind, secrets: Vec<SecretKey>) -> Self {
        let pubkeys: Vec<CompressedPublicKey> = secrets
            .iter()
            .map(|s| CompressedPublicKey(bitcoin::secp256k1::PublicKey::from_secret_key(secp, s)))
            .collect();
        let script_pubkey = match kind {
            Kind::Wpkh => ScriptBuf::new_p2wpkh(&pubkeys[0].wpubkey_hash()),
            Kind::Pkh => ScriptBuf::new_p2pkh(&PublicKey::from(pubkeys[0]).pubkey_hash()),
            Kind::ShWpkh => ScriptBuf::new_p2sh(
                &ScriptBuf::new_p2wpkh(&pubkeys[0].wpubkey_hash()).script_hash(),
            ),
            Kind::Tr => ScriptBuf::new_p2tr(secp, XOnlyPublicKey::from(pubkeys[0].0), None),
            Kind::WshMulti => ScriptBuf::new_p2wsh(&multisig_script(&pubkeys).wscript_hash()),
            Kind::ShMulti => ScriptBuf::new_p2sh(&multisig_script(&pubkeys).script_hash()),
        };
        Self {
            kind,
            secrets,
            pubkeys,
            script_pubkey,
        }
    }

    /// Sign input `idx` of `tx` (which spends `prevouts`, one per input) in place.
    pub fn sign(
        &self,
        secp: &Secp256k1<All>,
        tx: &mut Transaction,
        idx: usize,
        prevouts: &[TxOut],
    ) -> Result<()> {
        let value = prevouts
            .get(idx)
            .map(|p| p.value)
            .ok_or(GenError::Key("prevout".into()))?;
        let ecdsa = |sighash: [u8; 32], sk: &SecretKey| {
            let sig = secp.sign_ecdsa(&Message::from_digest(sighash), sk);
            bitcoin::ecdsa::Signature {
                signature: sig,
                sighash_type: EcdsaSighashType::All,
            }
        };
        let err = |e: String| GenError::Key(e);
        match self.kind {
            Kind::Wpkh | Kind::ShWpkh => {
                let wpkh = ScriptBuf::new_p2wpkh(&self.pubkeys[0].wpubkey_hash());
                let h = SighashCache::new(&*tx)
                    .p2wpkh_signature_hash(idx, &wpkh, value, EcdsaSighashType::All)
                    .map_err(|e| err(e.to_string()))?;
                let sig = ecdsa(h.to_byte_array(), &self.secrets[0]);
                tx.input[idx].witness = Witness::p2wpkh(&sig, &self.pubkeys[0].0);
                if self.kind == Kind::ShWpkh {
                    let push = bitcoin::script::PushBytesBuf::try_from(wpkh.to_bytes())
                        .map_err(|e| err(e.to_string()))?;
                    tx.input[idx].script_sig = bitcoin::script::Builder::new()
                        .push_slice(push)
                        .into_script();
                }
            }
            Kind::Pkh => {
                let h = SighashCache::new(&*tx)
                    .legacy_signature_hash(idx, &self.script_pubkey, EcdsaSighashType::All.to_u32())
                    .map_err(|e| err(e.to_string()))?;
                let sig = ecdsa(h.to_byte_array(), &self.secrets[0]);
                tx.input[idx].script_sig = bitcoin::script::Builder::new()
                    .push_slice(sig.serialize())
                    .push_key(&PublicKey::from(self.pubkeys[0]))
                    .into_script();
            }
            Kind::Tr => {
                let h = SighashCache::new(&*tx)
                    .taproot_key_spend_signature_hash(
                        idx,
                        &Prevouts::All(prevouts),
                        TapSighashType::Default,
                    )
                    .map_err(|e| err(e.to_string()))?;
                let kp = Keypair::from_secret_key(secp, &self.secrets[0]).tap_tweak(secp, None);
                let sig = secp.sign_schnorr_no_aux_rand(
                    &Message::from_digest(h.to_byte_array()),
                    &kp.to_keypair(),
                );
                let sig = bitcoin::taproot::Signature {
                    signature: sig,
                    sighash_type: TapSighashType::Default,
                };
                tx.input[idx].witness = Witness::p2tr_key_spend(&sig);
            }
            Kind::WshMulti | Kind::ShMulti => {
                let script = multisig_script(&self.pubkeys);
                let h = if self.kind == Kind::WshMulti {
                    SighashCache::new(&*tx)
                        .p2wsh_signature_hash(idx, &script, value, EcdsaSighashType::All)
                        .map_err(|e| err(e.to_string()))?
                        .to_byte_array()
                } else {
                    SighashCache::new(&*tx)
                        .legacy_signature_hash(idx, &script, EcdsaSighashType::All.to_u32())
                        .map_err(|e| err(e.to_string()))?
                        .to_byte_array()
                };
                // Two of three sign, in the order their keys appear in the sorted script.
                let mut signers: Vec<(CompressedPublicKey, SecretKey)> = self
                    .pubkeys
                    .iter()
                    .copied()
                    .zip(self.secrets.iter().copied())
                    .collect();
                signers.sort_by_key(|(pk, _)| pk.to_bytes());
                let sigs: Vec<Vec<u8>> = signers[..2]
                    .iter()
                    .map(|(_, sk)| ecdsa(h, sk).serialize().to_vec())
                    .collect();
                if self.kind == Kind::WshMulti {
                    let mut w = Witness::new();
                    w.push([]);
                    for s in &sigs {
                        w.push(s);
                    }
                    w.push(script.as_bytes());
                    tx.input[idx].witness = w;
                } else {
                    let mut b = bitcoin::script::Builder::new().push_opcode(bitcoin::opcodes::OP_0);
                    for s in sigs {
                        let push = bitcoin::script::PushBytesBuf::try_from(s)
                            .map_err(|e| err(e.to_string()))?;
                        b = b.push_slice(push);
                    }
                    let push = bitcoin::script::PushBytesBuf::try_from(script.to_bytes())
                        .map_err(|e| err(e.to_string()))?;
                    tx.input[idx].script_sig = b.push_slice(push).into_script();
                }
            }
        }
        Ok(())
    }
}

/// `OP_2 <k1> <k2> <k3> OP_3 OP_CHECKMULTISIG` with keys sorted as `sortedmulti` does.
fn multisig_script(pubkeys: &[CompressedPublicKey]) -> ScriptBuf {
    let mut keys: Vec<[u8; 33]> = pubkeys.iter().map(|k| k.to_bytes()).collect();
    keys.sort();
    let mut b = bitcoin::script::Builder::new().push_int(2);
    for k in &keys {
        b = b.push_slice(k);
    }
    b.push_int(keys.len() as i64)
        .push_opcode(bitcoin::opcodes::all::OP_CHECKMULTISIG)
        .into_script()
}

/// BIP-380 descriptor checksum.
pub fn descriptor_checksum(desc: &str) -> Option<String> {
    const INPUT_CHARSET: &str = "0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ ";
    const CHECKSUM_CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    fn polymod(c: u64, val: u64) -> u64 {
        let c0 = c >> 35;
        let mut c = ((c & 0x7ffffffff) << 5) ^ val;
        if c0 & 1 != 0 {
            c ^= 0xf5dee51989;
        }
        if c0 & 2 != 0 {
            c ^= 0xa9fdca3312;
        }
        if c0 & 4 != 0 {
            c ^= 0x1bab10e32d;
        }
        if c0 & 8 != 0 {
            c ^= 0x3706b1677a;
        }
        if c0 & 16 != 0 {
            c ^= 0x644d626ffd;
        }
        c
    }
    let mut c = 1u64;
    let mut cls = 0u64;
    let mut clscount = 0;
    for ch in desc.chars() {
        let pos = INPUT_CHARSET.find(ch)? as u64;
        c = polymod(c, pos & 31);
        cls = cls * 3 + (pos >> 5);
        clscount += 1;
        if clscount == 3 {
            c = polymod(c, cls);
            cls = 0;
            clscount = 0;
        }
    }
    if clscount > 0 {
        c = polymod(c, cls);
    }
    for _ in 0..8 {
        c = polymod(c, 0);
    }
    c ^= 1;
    Some(
        (0..8)
            .map(|j| CHECKSUM_CHARSET[((c >> (5 * (7 - j))) & 31) as usize] as char)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_bip380_example() {
        // Test vector from BIP-380.
        assert_eq!(
            descriptor_checksum("raw(deadbeef)").as_deref(),
            Some("89f8spxm")
        );
    }

    #[test]
    fn descriptors_are_public_and_deterministic() {
        let secp = Secp256k1::new();
        let a = AccountKeys::new(&secp, 7, "treasury", Kind::WshMulti).unwrap();
        let b = AccountKeys::new(&secp, 7, "treasury", Kind::WshMulti).unwrap();
        assert_eq!(a.descriptor(0), b.descriptor(0));
        assert!(a.descriptor(0).starts_with("wsh(sortedmulti(2,["));
        assert!(!a.descriptor(0).contains("tprv"));
        assert_ne!(a.descriptor(0), a.descriptor(1));
    }
}
