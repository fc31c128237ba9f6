//! Watch-only wallets: descriptor pairs (parsed with miniscript) and lists of bare addresses.
//!
//! Everything here checks input before anything is stored: private key material is refused
//! (see [`crate::secret`]), descriptors and addresses of another network than the
//! database's are refused naming both networks, and checksums are verified or added.

use std::str::FromStr;

use bitcoin::address::NetworkUnchecked;
use bitcoin::bip32::{DerivationPath, Fingerprint};
use bitcoin::{Address, Network, NetworkKind, ScriptBuf};
use miniscript::descriptor::{DescriptorPublicKey, DescriptorType};
use miniscript::policy::{semantic::Policy, Liftable};
use miniscript::{Descriptor, ForEachKey};
use serde::Serialize;

use crate::derive::KeychainDeriver;
use crate::network::ChainNetwork;
use crate::secret::{refuse_secret, SecretRefused};

/// Default number of unused addresses watched past the last used one.
pub const DEFAULT_GAP_LIMIT: u32 = 20;
/// Highest gap limit accepted: derivation cost grows with it at every sync.
pub const MAX_GAP_LIMIT: u32 = 100_000;

/// Which chain of a descriptor wallet: receiving addresses or change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Keychain {
    /// Receiving addresses (`…/0/*` by convention).
    External,
    /// Change addresses (`…/1/*`).
    Internal,
}

impl Keychain {
    /// Name used in the database and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Keychain::External => "external",
            Keychain::Internal => "internal",
        }
    }
}

/// Why a wallet definition was refused. No variant holds private key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WalletError {
    /// Private key material was found.
    #[error(transparent)]
    Secret(#[from] SecretRefused),
    /// miniscript could not parse the descriptor.
    #[error("{what} is not a valid output descriptor: {reason}")]
    Descriptor {
        /// Which descriptor (`--descriptor`, `--change-descriptor`).
        what: String,
        /// miniscript's explanation.
        reason: String,
    },
    /// The descriptor's checksum does not match its text.
    #[error("{what} has a checksum that does not match its text (#{given}); fix the descriptor or drop the '#…' suffix to have it computed")]
    Checksum {
        /// Which descriptor.
        what: String,
        /// The checksum given.
        given: String,
    },
    /// A key in the descriptor belongs to another network.
    #[error("{what}: key {index} is a {key_network} key ({prefix}…) but the database is {db_network}; use a {want} key")]
    KeyNetwork {
        /// Which descriptor.
        what: String,
        /// 1-based position of the key in the descriptor.
        index: usize,
        /// `mainnet` or `test networks`.
        key_network: &'static str,
        /// First characters of the public key, for finding it.
        prefix: String,
        /// The database's network.
        db_network: ChainNetwork,
        /// What kind of key would fit (`xpub` or `tpub`).
        want: &'static str,
    },
    /// Both a multipath descriptor (`<0;1>`) and a change descriptor were given.
    #[error("{0}")]
    Shape(String),
    /// An address could not be parsed.
    #[error("{where_}: {text:?} is not a Bitcoin address ({reason})")]
    Address {
        /// Where (`--addresses item 2`, `addresses.txt line 4`).
        where_: String,
        /// The text given.
        text: String,
        /// Parser's explanation.
        reason: String,
    },
    /// An address belongs to another network.
    #[error(
        "{where_}: address {address} is for {address_network}, but the database is {db_network}"
    )]
    AddressNetwork {
        /// Where it was given.
        where_: String,
        /// The address.
        address: String,
        /// The network(s) it belongs to.
        address_network: String,
        /// The database's network.
        db_network: ChainNetwork,
    },
    /// The same address was given twice in one list.
    #[error("{where_}: address {address} is listed twice")]
    DuplicateAddress {
        /// Where the second copy is.
        where_: String,
        /// The address.
        address: String,
    },
    /// No address in a list.
    #[error(
        "no addresses given: pass --addresses A,B,… or --addresses-file FILE (one address a line)"
    )]
    NoAddresses,
    /// A gap limit out of range.
    #[error("gap limit {0} is out of range: use 1 to {MAX_GAP_LIMIT}")]
    GapLimit(u32),
    /// Derivation failed (hardened index, or a script with no address form).
    #[error("cannot derive index {index} of the {keychain} descriptor: {reason}")]
    Derive {
        /// Keychain.
        keychain: &'static str,
        /// Index asked for.
        index: u32,
        /// Why.
        reason: String,
    },
}

/// A descriptor pair, checked and in canonical form (with checksum).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescriptorPair {
    /// Receiving descriptor.
    pub external: Descriptor<DescriptorPublicKey>,
    /// Change descriptor, if any.
    pub internal: Option<Descriptor<DescriptorPublicKey>>,
    /// True when the user gave no checksum and tesoro computed it.
    pub checksum_added: bool,
}

fn parse_one(
    text: &str,
    what: &str,
    network: ChainNetwork,
) -> Result<(Descriptor<DescriptorPublicKey>, bool), WalletError> {
    refuse_secret(text, what)?;
    let text = text.trim();
    let secp = bitcoin::secp256k1::Secp256k1::signing_only();
    let (desc, keymap) =
        Descriptor::<DescriptorPublicKey>::parse_descriptor(&secp, text).map_err(|e| {
            let reason = e.to_string();
            if reason.contains("checksum") || reason.contains("Checksum") {
                let given = text
                    .rsplit_once('#')
                    .map(|(_, c)| c)
                    .unwrap_or("")
                    .to_string();
                WalletError::Checksum {
                    what: what.to_string(),
                    given,
                }
            } else {
                WalletError::Descriptor {
                    what: what.to_string(),
                    reason,
                }
            }
        })?;
    if !keymap.is_empty() {
        // Reached only by a private key form the text scan did not recognise; the
        // parsed key map is dropped here and never leaves this function.
        return Err(WalletError::Secret(SecretRefused {
            kind: crate::secret::SecretKind::ExtendedPrivateKey,
            where_: what.to_string(),
        }));
    }
    desc.sanity_check().map_err(|e| WalletError::Descriptor {
        what: what.to_string(),
        reason: e.to_string(),
    })?;
    check_key_networks(&desc, what, network)?;
    Ok((desc, !text.contains('#')))
}

fn check_key_networks(
    desc: &Descriptor<DescriptorPublicKey>,
    what: &str,
    network: ChainNetwork,
) -> Result<(), WalletError> {
    let want_kind = NetworkKind::from(network.0);
    let mut index = 0usize;
    let mut bad: Option<WalletError> = None;
    desc.for_each_key(|key| {
        index += 1;
        let kind = match key {
            DescriptorPublicKey::XPub(x) => Some((x.xkey.network, x.xkey.to_string())),
            DescriptorPublicKey::MultiXPub(x) => Some((x.xkey.network, x.xkey.to_string())),
            DescriptorPublicKey::Single(_) => None,
        };
        if let Some((kind, text)) = kind {
            if kind != want_kind && bad.is_none() {
                bad = Some(WalletError::KeyNetwork {
                    what: what.to_string(),
                    index,
                    key_network: match kind {
                        NetworkKind::Main => "mainnet",
                        NetworkKind::Test => "test-network",
                    },
                    prefix: text.chars().take(12).collect(),
                    db_network: network,
                    want: match want_kind {
                        NetworkKind::Main => "xpub",
                        NetworkKind::Test => "tpub",
                    },
                });
            }
        }
        true
    });
    match bad {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

impl DescriptorPair {
    /// Parses a receiving descriptor and an optional change descriptor for `network`.
    ///
    /// A multipath descriptor (`…/<0;1>/*`) stands for both and cannot be combined with a
    /// change descriptor.
    pub fn parse(
        external: &str,
        internal: Option<&str>,
        network: ChainNetwork,
    ) -> Result<Self, WalletError> {
        let (ext, ext_added) = parse_one(external, "--descriptor", network)?;
        let (external, internal, checksum_added) = if ext.is_multipath() {
            if internal.is_some() {
                return Err(WalletError::Shape(
                    "--descriptor is multipath (<0;1>), which already gives the change addresses: drop --change-descriptor".into(),
                ));
            }
            let mut singles =
                ext.into_single_descriptors()
                    .map_err(|e| WalletError::Descriptor {
                        what: "--descriptor".into(),
                        reason: e.to_string(),
                    })?;
            if singles.len() != 2 {
                return Err(WalletError::Shape(format!(
                    "--descriptor has {} paths in its multipath step; tesoro takes exactly two (<receive;change>)",
                    singles.len()
                )));
            }
            let int = singles.pop();
            let ext = singles.pop();
            match (ext, int) {
                (Some(e), Some(i)) => (e, Some(i), ext_added),
                _ => {
                    return Err(WalletError::Shape(
                        "--descriptor multipath expansion failed".into(),
                    ))
                }
            }
        } else {
            let int = match internal {
                Some(text) => {
                    let (d, added) = parse_one(text, "--change-descriptor", network)?;
                    if d.is_multipath() {
                        return Err(WalletError::Shape(
                            "--change-descriptor must not be multipath".into(),
                        ));
                    }
                    Some((d, added))
                }
                None => None,
            };
            let added = ext_added || int.as_ref().is_some_and(|(_, a)| *a);
            (ext, int.map(|(d, _)| d), added)
        };
        if let Some(int) = &internal {
            if int.to_string() == external.to_string() {
                return Err(WalletError::Shape(
                    "--change-descriptor is the same as --descriptor".into(),
                ));
            }
            if int.has_wildcard() != external.has_wildcard() {
                return Err(WalletError::Shape(
                    "--descriptor and --change-descriptor must both be ranged (…/*) or both fixed"
                        .into(),
                ));
            }
        }
        Ok(DescriptorPair {
            external,
            internal,
            checksum_added,
        })
    }

    /// The descriptor of one keychain (`Internal` falls back to none).
    pub fn keychain(&self, k: Keychain) -> Option<&Descriptor<DescriptorPublicKey>> {
        match k {
            Keychain::External => Some(&self.external),
            Keychain::Internal => self.internal.as_ref(),
        }
    }

    /// Whether the descriptors derive many scripts (`/*`) or a single one.
    pub fn is_ranged(&self) -> bool {
        self.external.has_wildcard()
    }

    /// The script at `index` of `keychain`.
    pub fn script_at(&self, keychain: Keychain, index: u32) -> Result<ScriptBuf, WalletError> {
        let desc = self.keychain(keychain).ok_or(WalletError::Derive {
            keychain: keychain.as_str(),
            index,
            reason: "this wallet has no change descriptor".into(),
        })?;
        derive_script(desc, keychain, index)
    }

    /// A deriver for many children of `keychain` (each key's fixed path walked once).
    pub fn deriver(&self, keychain: Keychain) -> Result<KeychainDeriver, WalletError> {
        let desc = self.keychain(keychain).ok_or(WalletError::Derive {
            keychain: keychain.as_str(),
            index: 0,
            reason: "this wallet has no change descriptor".into(),
        })?;
        KeychainDeriver::new(desc).map_err(|e| WalletError::Derive {
            keychain: keychain.as_str(),
            index: 0,
            reason: e.to_string(),
        })
    }

    /// Public facts for `wallet show`.
    pub fn info(&self) -> DescriptorInfo {
        DescriptorInfo::of(self)
    }
}

/// Derives the script of `desc` at `index`. For many children of one keychain, build a
/// [`KeychainDeriver`] once ([`DescriptorPair::deriver`]) instead.
pub fn derive_script(
    desc: &Descriptor<DescriptorPublicKey>,
    keychain: Keychain,
    index: u32,
) -> Result<ScriptBuf, WalletError> {
    let err = |e: crate::derive::DeriveError| WalletError::Derive {
        keychain: keychain.as_str(),
        index,
        reason: e.to_string(),
    };
    KeychainDeriver::new(desc)
        .map_err(err)?
        .script_at(index)
        .map_err(err)
}

/// The address of a script on `network`, if it has one (bare multisig and raw scripts do not).
pub fn script_address(script: &ScriptBuf, network: Network) -> Option<Address> {
    Address::from_script(script, network).ok()
}

/// A key of a descriptor, as `wallet show` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// Master key fingerprint (from the key origin, or of the key itself).
    pub fingerprint: String,
    /// Full derivation path from the master, when known.
    pub origin_path: Option<String>,
    /// The public key as written (xpub/tpub or hex), without derivation steps.
    pub key: String,
}

/// Public facts of a descriptor wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DescriptorInfo {
    /// Script type: wpkh, sh(wpkh), wsh, sh(wsh), tr, pkh, sh, bare.
    pub script_type: String,
    /// Spending policy: "single key", "2-of-3 multisig", "taproot: key path + 2 script leaves".
    pub policy: String,
    /// Keys with their origins.
    pub keys: Vec<KeyInfo>,
    /// Whether it derives many addresses.
    pub ranged: bool,
    /// Receiving descriptor with checksum.
    pub external: String,
    /// Change descriptor with checksum.
    pub internal: Option<String>,
}

impl DescriptorInfo {
    fn of(pair: &DescriptorPair) -> Self {
        let desc = &pair.external;
        let script_type = match desc.desc_type() {
            DescriptorType::Bare => "bare",
            DescriptorType::Sh | DescriptorType::ShSortedMulti => "sh",
            DescriptorType::Pkh => "pkh",
            DescriptorType::Wpkh => "wpkh",
            DescriptorType::ShWpkh => "sh(wpkh)",
            DescriptorType::Wsh | DescriptorType::WshSortedMulti => "wsh",
            DescriptorType::ShWsh | DescriptorType::ShWshSortedMulti => "sh(wsh)",
            DescriptorType::Tr => "tr",
        }
        .to_string();
        let policy = describe_policy(desc);
        let mut keys = Vec::new();
        desc.for_each_key(|k| {
            keys.push(key_info(k));
            true
        });
        DescriptorInfo {
            script_type,
            policy,
            keys,
            ranged: desc.has_wildcard(),
            external: pair.external.to_string(),
            internal: pair.internal.as_ref().map(|d| d.to_string()),
        }
    }
}

fn key_info(k: &DescriptorPublicKey) -> KeyInfo {
    let fingerprint: Fingerprint = k.master_fingerprint();
    let origin_path = match k {
        DescriptorPublicKey::XPub(x) => x.origin.as_ref().map(|(_, p)| p.clone()),
        DescriptorPublicKey::MultiXPub(x) => x.origin.as_ref().map(|(_, p)| p.clone()),
        DescriptorPublicKey::Single(s) => s.origin.as_ref().map(|(_, p)| p.clone()),
    }
    .map(|p: DerivationPath| format!("m/{}", p.to_string().trim_start_matches("m/")));
    let key = match k {
        DescriptorPublicKey::XPub(x) => x.xkey.to_string(),
        DescriptorPublicKey::MultiXPub(x) => x.xkey.to_string(),
        DescriptorPublicKey::Single(s) => match &s.key {
            miniscript::descriptor::SinglePubKey::FullKey(pk) => pk.to_string(),
            miniscript::descriptor::SinglePubKey::XOnly(pk) => pk.to_string(),
        },
    };
    KeyInfo {
        fingerprint: fingerprint.to_string(),
        origin_path,
        key,
    }
}

fn describe_policy(desc: &Descriptor<DescriptorPublicKey>) -> String {
    if let Descriptor::Tr(tr) = desc {
        let leaves = tr.iter_scripts().count();
        return if leaves == 0 {
            "single key (taproot key path)".into()
        } else {
            format!("taproot: key path + {leaves} script leaves")
        };
    }
    match desc.lift() {
        Ok(Policy::Key(_)) => "single key".into(),
        Ok(Policy::Thresh(t)) if t.iter().all(|p| matches!(**p, Policy::Key(_))) => {
            format!("{}-of-{} multisig", t.k(), t.n())
        }
        Ok(_) => "miniscript policy".into(),
        Err(_) => "unknown policy".into(),
    }
}

/// A bare published address, checked for the database's network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchedAddress {
    /// The address as the network writes it.
    pub address: String,
    /// Its output script.
    #[serde(skip)]
    pub script_pubkey: ScriptBuf,
}

fn networks_of(addr: &Address<NetworkUnchecked>) -> String {
    let candidates = [
        (Network::Bitcoin, "mainnet"),
        (Network::Testnet, "testnet/testnet4/signet"),
        (Network::Regtest, "regtest"),
    ];
    let names: Vec<&str> = candidates
        .iter()
        .filter(|(n, _)| addr.is_valid_for_network(*n))
        .map(|(_, name)| *name)
        .collect();
    if names.is_empty() {
        "another network".into()
    } else {
        names.join(" or ")
    }
}

/// Parses one address given at `where_` for `network`.
pub fn parse_address(
    text: &str,
    where_: &str,
    network: ChainNetwork,
) -> Result<WatchedAddress, WalletError> {
    refuse_secret(text, where_)?;
    let text = text.trim();
    let unchecked =
        Address::<NetworkUnchecked>::from_str(text).map_err(|e| WalletError::Address {
            where_: where_.to_string(),
            text: text.chars().take(100).collect(),
            reason: e.to_string(),
        })?;
    if !unchecked.is_valid_for_network(network.0) {
        return Err(WalletError::AddressNetwork {
            where_: where_.to_string(),
            address: text.to_string(),
            address_network: networks_of(&unchecked),
            db_network: network,
        });
    }
    let checked = unchecked.assume_checked();
    Ok(WatchedAddress {
        address: checked.to_string(),
        script_pubkey: checked.script_pubkey(),
    })
}

/// Parses a list of addresses: `items` are `(where, text)` pairs. Blank items are skipped.
/// The whole list is refused on the first bad item, so nothing partial is ever stored.
pub fn parse_address_list<'a, I>(
    items: I,
    network: ChainNetwork,
) -> Result<Vec<WatchedAddress>, WalletError>
where
    I: IntoIterator<Item = (String, &'a str)>,
{
    let mut out: Vec<WatchedAddress> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (where_, text) in items {
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let a = parse_address(text, &where_, network)?;
        if !seen.insert(a.script_pubkey.clone()) {
            return Err(WalletError::DuplicateAddress {
                where_,
                address: a.address,
            });
        }
        out.push(a);
    }
    if out.is_empty() {
        return Err(WalletError::NoAddresses);
    }
    Ok(out)
}

/// Splits an addresses file into `(where, text)` items: one address a line, `#` starts a
/// comment, commas also separate.
pub fn address_file_items<'a>(file_name: &str, content: &'a str) -> Vec<(String, &'a str)> {
    let mut items = Vec::new();
    for (i, line) in content.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        for part in line.split(',') {
            if !part.trim().is_empty() {
                items.push((format!("{file_name} line {}", i + 1), part));
            }
        }
    }
    items
}

/// Checks a gap limit.
pub fn check_gap_limit(gap: u32) -> Result<u32, WalletError> {
    if gap == 0 || gap > MAX_GAP_LIMIT {
        Err(WalletError::GapLimit(gap))
    } else {
        Ok(gap)
    }
}
