//! Statements: the reserve's holdings at a pinned block, in canonical JSON, hashed and
//! signed with the office's Ed25519 key, so that an auditor or a partner state can check
//! the signature and re-derive every balance from its own node.
//!
//! The signed bytes are the canonical form ([`crate::canonical`]) of the `statement` object
//! exactly as it appears in the file, unknown fields included, so nothing can be added to a
//! statement after signing without breaking the signature.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::canonical::{to_canonical, CanonicalError};

/// The format tag every statement carries.
pub const FORMAT: &str = "tesoro-statement/1";

/// How an address is shown in a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Listed, and control proven by a signature checked at the statement's height.
    Verified,
    /// Listed without a proof of control.
    Published,
    /// Counted in the totals, not listed.
    Private,
}

/// The block a statement is pinned to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinnedBlock {
    /// Height.
    pub height: u32,
    /// Block hash (display hex).
    pub hash: String,
    /// Header time (Unix seconds).
    pub time: u32,
}

/// One unspent output at the pinned block.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementUtxo {
    /// `txid:vout`.
    pub outpoint: String,
    /// Value in sats.
    pub sats: u64,
    /// Height of the block that created it.
    pub height: u32,
}

/// A listed address with its outputs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementAddress {
    /// The address.
    pub address: String,
    /// Owning entity's code.
    pub entity: String,
    /// Wallet name within the entity.
    pub wallet: String,
    /// Tier.
    pub tier: Tier,
    /// Sum of `utxos`.
    pub balance_sats: u64,
    /// Unspent outputs at the pinned block, sorted by outpoint.
    pub utxos: Vec<StatementUtxo>,
}

/// An entity's holdings, including everything below it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntityTotal {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Parent's code.
    pub parent: Option<String>,
    /// Sats held by it and its agencies (listed and private).
    pub total_sats: u64,
}

/// The price used to value the holdings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Valuation {
    /// ISO currency code.
    pub currency: String,
    /// Price of one BTC, decimal string.
    pub price: String,
    /// Value of `total_sats`, decimal string, rounded to cents.
    pub value: String,
    /// Day of the price (YYYY-MM-DD).
    pub date: String,
    /// Where the price comes from.
    pub source: String,
    /// The exchange rate used when the price was derived from another currency's series.
    pub fx: Option<FxUsed>,
}

/// An exchange rate a valuation was derived with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FxUsed {
    /// Currency of the BTC price series used (e.g. `USD`).
    pub base: String,
    /// That series' price of one BTC, decimal string.
    pub base_price: String,
    /// Units of the valuation currency per one `base`, decimal string.
    pub rate: String,
    /// Day of the rate (YYYY-MM-DD).
    pub date: String,
    /// Where the rate comes from.
    pub source: String,
}

/// A proof of control attached to a statement. Every proof signs the statement's
/// `challenge` message, which names the institution, the day and the pinned block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Proof {
    /// A BIP-322 signed message for one address.
    Bip322 {
        /// The address.
        address: String,
        /// `simple` or `full`.
        format: String,
        /// The signature as the signer's wallet produced it (base64).
        signature: String,
    },
    /// A BIP-127 proof-of-reserves transaction (PSBT, base64) spending outputs unspent at the
    /// pinned block.
    Bip127 {
        /// The PSBT, base64.
        psbt: String,
        /// How the commitment input hashes the message: `sha256` (BIP-127) or `sha256d`
        /// (bdk-reserves).
        commitment: String,
        /// The outpoints it spends (`txid:vout`), in input order.
        outpoints: Vec<String>,
        /// Sum of the outputs it spends, in sats.
        sats: u64,
    },
}

/// The statement a movement summary starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreviousStatement {
    /// Its height.
    pub height: u32,
    /// Its block hash.
    pub hash: String,
    /// Its SHA-256.
    pub sha256: String,
    /// Its total.
    pub total_sats: u64,
}

/// Sats and transactions of one kind of movement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindTotal {
    /// The kind (`purchase`, `mining`, `sale`, …).
    pub kind: String,
    /// Number of movements.
    pub count: u64,
    /// Sats.
    pub sats: u64,
}

/// Movements by class between the previous statement's block (excluded) and this one's
/// (included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Movements {
    /// The previous statement.
    pub since: PreviousStatement,
    /// Holdings at the previous block, of the wallets this statement covers.
    pub opening_sats: u64,
    /// Value that entered the institution, by kind, sorted by kind.
    pub acquisitions: Vec<KindTotal>,
    /// Movements between the state's own wallets.
    pub internal_count: u64,
    /// Sats received from the state's own wallets.
    pub internal_in_sats: u64,
    /// Sats sent to the state's own wallets.
    pub internal_out_sats: u64,
    /// Value that left the state, by kind, sorted by kind.
    pub disposals: Vec<KindTotal>,
    /// Movements that paid a network fee.
    pub fee_count: u64,
    /// Network fees paid.
    pub fee_sats: u64,
}

impl Movements {
    /// `opening + acquired + internal in - internal out - disposed - fees`, the holdings the
    /// movements imply (None on overflow or a negative result).
    pub fn implied_closing(&self) -> Option<u64> {
        let acq: u64 = self
            .acquisitions
            .iter()
            .try_fold(0u64, |a, k| a.checked_add(k.sats))?;
        let disp: u64 = self
            .disposals
            .iter()
            .try_fold(0u64, |a, k| a.checked_add(k.sats))?;
        self.opening_sats
            .checked_add(acq)?
            .checked_add(self.internal_in_sats)?
            .checked_sub(self.internal_out_sats)?
            .checked_sub(disp)?
            .checked_sub(self.fee_sats)
    }
}

/// The software that made the statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Software {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
}

/// A statement of holdings at a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// Always [`FORMAT`].
    pub format: String,
    /// Network name (`mainnet`, `regtest`, …).
    pub network: String,
    /// The pinned block.
    pub block: PinnedBlock,
    /// The entity the statement covers (with everything below it).
    pub institution: String,
    /// Entity totals, parents before children.
    pub entities: Vec<EntityTotal>,
    /// Listed addresses, sorted by address.
    pub addresses: Vec<StatementAddress>,
    /// Sats at private (unlisted) addresses.
    pub private_sats: u64,
    /// All sats: listed plus private.
    pub total_sats: u64,
    /// Movements since a previous statement, when one was given.
    pub movements: Option<Movements>,
    /// Valuations, possibly none.
    pub valuations: Vec<Valuation>,
    /// The message every proof of control signs ([`challenge_message`]).
    pub challenge: String,
    /// Proofs of control, checked at the pinned block when the statement was made.
    pub proofs: Vec<Proof>,
    /// Producer.
    pub software: Software,
    /// The signer's Ed25519 public key, hex.
    pub public_key: String,
    /// When it was made (RFC 3339, informational).
    pub issued_at: String,
}

/// A statement with its hash and signature: the file format. Fields beside these three are
/// refused: they would be read as part of the file but are covered by no signature.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignedStatement {
    /// The statement as signed.
    pub statement: Value,
    /// SHA-256 of the statement's canonical bytes, hex.
    pub sha256: String,
    /// Ed25519 signature of the canonical bytes, hex.
    pub signature: String,
}

/// Why a statement could not be made, read or checked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    /// The JSON does not parse or has the wrong shape.
    #[error("not a tesoro statement: {0}")]
    Shape(String),
    /// A value has no canonical form.
    #[error("no canonical form: {0}")]
    Canonical(#[from] CanonicalError),
    /// The recorded hash does not match the statement.
    #[error("the statement was altered: its SHA-256 is {found}, the file records {recorded}")]
    HashMismatch {
        /// Recorded in the file.
        recorded: String,
        /// Computed now.
        found: String,
    },
    /// The signature does not verify.
    #[error("the signature does not verify with the statement's public key {0}: the statement was altered or signed by another key")]
    BadSignature(String),
    /// A key or signature is malformed.
    #[error("{0}")]
    Key(String),
    /// The statement was signed by another key than the one expected.
    #[error("signed by key {found}, not by the expected key {expected}")]
    WrongKey {
        /// Key expected by the verifier.
        expected: String,
        /// Key in the statement.
        found: String,
    },
    /// Internal totals disagree with the listed addresses.
    #[error("totals do not add up: {0}")]
    Totals(String),
}

fn hex(bytes: &[u8]) -> String {
    bitcoin::hex::DisplayHex::to_lower_hex_string(bytes)
}

fn unhex<const N: usize>(s: &str, what: &str) -> Result<[u8; N], StatementError> {
    crate::canonical::lower_hex(s).map_err(|why| StatementError::Key(format!("{what} {why}")))
}

/// SHA-256 of canonical bytes, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use bitcoin::hashes::{sha256, Hash};
    hex(sha256::Hash::hash(bytes).as_byte_array())
}

/// The message the office's signers sign to prove control of the reserve's coins at a
/// block: it names the institution, the block's UTC day, height and hash, so a proof cannot be
/// reused for another institution or another block.
///
/// ```
/// let m = tesoro_core::statement::challenge_message("SV", "2025-07-17", 905000, "00ab");
/// assert_eq!(m, "tesoro proof of control: institution SV, date 2025-07-17, block 905000 00ab");
/// ```
pub fn challenge_message(institution: &str, date: &str, height: u32, hash: &str) -> String {
    format!(
        "tesoro proof of control: institution {institution}, date {date}, block {height} {hash}"
    )
}

/// The UTC day (YYYY-MM-DD) of a block time.
pub fn utc_day(time: u32) -> String {
    time::OffsetDateTime::from_unix_timestamp(i64::from(time))
        .map(|t| {
            let d = t.date();
            format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
        })
        .unwrap_or_else(|_| "1970-01-01".into())
}

fn add(a: u64, b: u64, what: &str) -> Result<u64, StatementError> {
    a.checked_add(b)
        .ok_or_else(|| StatementError::Totals(format!("{what} overflows 64 bits")))
}

impl Statement {
    /// The challenge this statement's proofs must sign.
    pub fn expected_challenge(&self) -> String {
        challenge_message(
            &self.institution,
            &utc_day(self.block.time),
            self.block.height,
            &self.block.hash,
        )
    }

    /// Checks that totals add up: each address's balance is the sum of its outputs, and the
    /// total is listed plus private; the movements, when present, lead from the opening to the
    /// total; every `verified` address is covered by a proof and the challenge is this
    /// statement's.
    pub fn check_totals(&self) -> Result<(), StatementError> {
        let mut listed: u64 = 0;
        for a in &self.addresses {
            let mut sum: u64 = 0;
            for u in &a.utxos {
                sum = add(sum, u.sats, &format!("address {}", a.address))?;
            }
            if sum != a.balance_sats {
                return Err(StatementError::Totals(format!(
                    "address {} lists {} sats of outputs but a balance of {}",
                    a.address, sum, a.balance_sats
                )));
            }
            listed = add(listed, sum, "the listed total")?;
        }
        if add(listed, self.private_sats, "the total")? != self.total_sats {
            return Err(StatementError::Totals(format!(
                "listed {listed} + private {} != total {}",
                self.private_sats, self.total_sats
            )));
        }
        if let Some(root) = self.entities.first() {
            if root.total_sats != self.total_sats {
                return Err(StatementError::Totals(format!(
                    "entity {} totals {} but the statement totals {}",
                    root.code, root.total_sats, self.total_sats
                )));
            }
        }
        if let Some(m) = &self.movements {
            if m.since.height >= self.block.height {
                return Err(StatementError::Totals(format!(
                    "movements start at height {}, not before this statement's height {}",
                    m.since.height, self.block.height
                )));
            }
            match m.implied_closing() {
                Some(c) if c == self.total_sats => {}
                c => {
                    return Err(StatementError::Totals(format!(
                        "opening {} sats plus the movements give {}, but the statement totals {}",
                        m.opening_sats,
                        c.map_or_else(|| "no valid figure".to_string(), |c| c.to_string()),
                        self.total_sats
                    )))
                }
            }
        }
        if !self.proofs.is_empty() && self.challenge != self.expected_challenge() {
            return Err(StatementError::Totals(format!(
                "the proofs sign {:?}, not this statement's challenge {:?}",
                self.challenge,
                self.expected_challenge()
            )));
        }
        let covered = self.proven_addresses();
        for a in &self.addresses {
            if a.tier == Tier::Verified && !covered.contains(a.address.as_str()) {
                return Err(StatementError::Totals(format!(
                    "address {} is marked verified but no attached proof covers it",
                    a.address
                )));
            }
        }
        Ok(())
    }

    /// Addresses covered by an attached proof: named by a BIP-322 proof, or holding an output
    /// a BIP-127 proof spends. (Whether the proofs are valid is for `tesoro-proof` to check.)
    pub fn proven_addresses(&self) -> std::collections::BTreeSet<&str> {
        let mut spent: std::collections::BTreeSet<&str> = Default::default();
        let mut out: std::collections::BTreeSet<&str> = Default::default();
        for p in &self.proofs {
            match p {
                Proof::Bip322 { address, .. } => {
                    out.insert(address.as_str());
                }
                Proof::Bip127 { outpoints, .. } => {
                    spent.extend(outpoints.iter().map(String::as_str));
                }
            }
        }
        for a in &self.addresses {
            if a.utxos.iter().any(|u| spent.contains(u.outpoint.as_str())) {
                out.insert(a.address.as_str());
            }
        }
        out
    }

    /// Canonicalizes, hashes and signs.
    pub fn sign(&self, key: &SigningKey) -> Result<SignedStatement, StatementError> {
        let mut s = self.clone();
        s.public_key = hex(key.verifying_key().as_bytes());
        s.check_totals()?;
        let value = serde_json::to_value(&s).map_err(|e| StatementError::Shape(e.to_string()))?;
        let bytes = to_canonical(&value)?;
        let sig = key.sign(&bytes);
        Ok(SignedStatement {
            statement: value,
            sha256: sha256_hex(&bytes),
            signature: hex(&sig.to_bytes()),
        })
    }
}

impl SignedStatement {
    /// Reads a statement file's JSON.
    pub fn from_json(text: &str) -> Result<Self, StatementError> {
        serde_json::from_str(text).map_err(|e| StatementError::Shape(e.to_string()))
    }

    /// Checks hash and signature (and, when given, that the signer is `expected`), then
    /// returns the statement. Totals are checked too.
    pub fn verify(&self, expected: Option<&VerifyingKey>) -> Result<Statement, StatementError> {
        let bytes = to_canonical(&self.statement)?;
        let found = sha256_hex(&bytes);
        if found != self.sha256 {
            return Err(StatementError::HashMismatch {
                recorded: self.sha256.clone(),
                found,
            });
        }
        let st: Statement = serde_json::from_value(self.statement.clone())
            .map_err(|e| StatementError::Shape(e.to_string()))?;
        if st.format != FORMAT {
            return Err(StatementError::Shape(format!(
                "format {:?}, this tesoro reads {FORMAT:?}",
                st.format
            )));
        }
        let pk_bytes: [u8; 32] = unhex(&st.public_key, "public_key")?;
        let pk = VerifyingKey::from_bytes(&pk_bytes)
            .map_err(|_| StatementError::Key("public_key is not an Ed25519 point".into()))?;
        if let Some(e) = expected {
            if e != &pk {
                return Err(StatementError::WrongKey {
                    expected: hex(e.as_bytes()),
                    found: st.public_key.clone(),
                });
            }
        }
        let sig_bytes: [u8; 64] = unhex(&self.signature, "signature")?;
        let sig = Signature::from_bytes(&sig_bytes);
        // Strict: refuses small-order keys and non-canonical signatures, so no second
        // signature verifies for the same statement and key.
        pk.verify_strict(&bytes, &sig)
            .map_err(|_| StatementError::BadSignature(st.public_key.clone()))?;
        st.check_totals()?;
        Ok(st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Statement {
        Statement {
            format: FORMAT.into(),
            network: "regtest".into(),
            block: PinnedBlock {
                height: 150,
                hash: "00".repeat(32),
                time: 1_700_000_000,
            },
            institution: "SV".into(),
            entities: vec![EntityTotal {
                code: "SV".into(),
                name: "El Salvador".into(),
                parent: None,
                total_sats: 700,
            }],
            addresses: vec![StatementAddress {
                address: "bcrt1qexample".into(),
                entity: "SV".into(),
                wallet: "cold".into(),
                tier: Tier::Published,
                balance_sats: 500,
                utxos: vec![
                    StatementUtxo {
                        outpoint: format!("{}:0", "11".repeat(32)),
                        sats: 200,
                        height: 120,
                    },
                    StatementUtxo {
                        outpoint: format!("{}:1", "22".repeat(32)),
                        sats: 300,
                        height: 121,
                    },
                ],
            }],
            private_sats: 200,
            total_sats: 700,
            movements: None,
            valuations: vec![],
            challenge: String::new(),
            proofs: vec![],
            software: Software {
                name: "tesoro".into(),
                version: "0.1.0".into(),
            },
            public_key: String::new(),
            issued_at: "2026-11-29T00:00:00Z".into(),
        }
    }

    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    #[test]
    fn sign_then_verify() {
        let signed = sample().sign(&key(1)).unwrap();
        let st = signed.verify(Some(&key(1).verifying_key())).unwrap();
        assert_eq!(st.total_sats, 700);
        // Through a file and back, pretty-printed: the canonical bytes are the same.
        let text = serde_json::to_string_pretty(&signed).unwrap();
        SignedStatement::from_json(&text)
            .unwrap()
            .verify(None)
            .unwrap();
    }

    #[test]
    fn any_change_breaks_it() {
        let signed = sample().sign(&key(1)).unwrap();
        let mut t = signed.clone();
        t.statement["total_sats"] = serde_json::json!(701);
        assert!(matches!(
            t.verify(None),
            Err(StatementError::HashMismatch { .. })
        ));
        // Re-hashing after the change still fails on the signature.
        let bytes = to_canonical(&t.statement).unwrap();
        t.sha256 = sha256_hex(&bytes);
        assert!(matches!(
            t.verify(None),
            Err(StatementError::BadSignature(_))
        ));
        // An added field is signed too.
        let mut t = signed.clone();
        t.statement["note"] = serde_json::json!("added later");
        assert!(t.verify(None).is_err());
        // Another key.
        assert!(matches!(
            signed.verify(Some(&key(2).verifying_key())),
            Err(StatementError::WrongKey { .. })
        ));
    }

    #[test]
    fn a_file_has_one_spelling_of_its_signature() {
        // Found by the mutation proptest in tesoro-proof: "0d" → "0D" in the signature still
        // verified, so two different files carried the same signed statement.
        let signed = sample().sign(&key(1)).unwrap();
        let mut t = signed.clone();
        t.signature = t.signature.to_uppercase();
        assert_ne!(t.signature, signed.signature);
        assert_eq!(
            t.verify(None),
            Err(StatementError::Key(
                "signature is not lowercase hex (0-9, a-f)".into()
            ))
        );
        let mut t = signed.clone();
        t.statement["public_key"] = serde_json::json!(signed.statement["public_key"]
            .as_str()
            .unwrap()
            .to_uppercase());
        let bytes = to_canonical(&t.statement).unwrap();
        t.sha256 = sha256_hex(&bytes);
        assert!(matches!(t.verify(None), Err(StatementError::Key(_))));
        // Nothing unsigned rides beside the statement.
        let mut v = serde_json::to_value(&signed).unwrap();
        v["note"] = serde_json::json!("approved by the minister");
        let err = SignedStatement::from_json(&v.to_string()).unwrap_err();
        assert!(err.to_string().contains("unknown field `note`"), "{err}");
    }

    #[test]
    fn totals_must_add_up() {
        let mut s = sample();
        s.total_sats = 800;
        assert!(matches!(s.sign(&key(1)), Err(StatementError::Totals(_))));
        // Outputs that overflow 64 bits are an error, not a panic.
        let mut s = sample();
        s.addresses[0].utxos[0].sats = u64::MAX;
        assert!(matches!(s.sign(&key(1)), Err(StatementError::Totals(_))));
    }

    #[test]
    fn movements_must_lead_from_opening_to_total() {
        let mut s = sample();
        s.block.height = 200;
        s.movements = Some(Movements {
            since: PreviousStatement {
                height: 150,
                hash: "11".repeat(32),
                sha256: "22".repeat(32),
                total_sats: 600,
            },
            opening_sats: 600,
            acquisitions: vec![KindTotal {
                kind: "purchase".into(),
                count: 1,
                sats: 150,
            }],
            internal_count: 1,
            internal_in_sats: 40,
            internal_out_sats: 40,
            disposals: vec![KindTotal {
                kind: "sale".into(),
                count: 1,
                sats: 40,
            }],
            fee_count: 2,
            fee_sats: 10,
        });
        s.sign(&key(1)).unwrap();
        if let Some(m) = s.movements.as_mut() {
            m.fee_sats = 11;
        }
        let e = s.sign(&key(1)).unwrap_err();
        assert!(e.to_string().contains("movements give 699"), "{e}");
    }

    #[test]
    fn verified_addresses_need_a_proof_over_this_challenge() {
        let mut s = sample();
        s.addresses[0].tier = Tier::Verified;
        let e = s.sign(&key(1)).unwrap_err();
        assert!(e.to_string().contains("no attached proof"), "{e}");
        s.challenge = s.expected_challenge();
        s.proofs.push(Proof::Bip127 {
            psbt: String::new(),
            commitment: "sha256".into(),
            outpoints: vec![format!("{}:1", "22".repeat(32))],
            sats: 300,
        });
        s.sign(&key(1)).unwrap();
        s.challenge = challenge_message("SV", "2025-01-01", 1, "00");
        let e = s.sign(&key(1)).unwrap_err();
        assert!(
            e.to_string().contains("not this statement's challenge"),
            "{e}"
        );
    }
}
