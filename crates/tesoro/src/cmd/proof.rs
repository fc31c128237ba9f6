//! `tesoro proof challenge|add|verify|list`: proofs of control for a statement's block.
//!
//! The office prints the challenge, its signers sign it offline with their own wallets
//! (BIP-322 per address, or a BIP-127 proof-of-reserves PSBT), and the office adds what comes
//! back. tesoro only ever sees signatures: it never asks for, reads or stores a key.

use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;
use tesoro_core::chain::BlockMeta;
use tesoro_core::statement::{challenge_message, utc_day, Proof};
use tesoro_core::Entity;
use tesoro_proof::bip127::ReservesPsbt;
use tesoro_store::Store;

use crate::cmd::holdings::{btc, resolve_at};
use crate::cmd::statement::{root_entity, store_unspent};
use crate::output;
use crate::Globals;

/// `tesoro proof …`
#[derive(Debug, clap::Subcommand)]
pub enum ProofCmd {
    /// Print the message the office's signers sign for a statement at a block.
    Challenge {
        #[command(flatten)]
        at: AtArgs,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a signature or PSBT over the challenge and store it for statements at that block.
    Add(ProofArgs),
    /// Check a signature or PSBT over the challenge without storing it.
    Verify(ProofArgs),
    /// Proofs stored for an entity.
    List {
        /// The entity (default: the only root).
        #[arg(long)]
        entity: Option<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// The block and entity a challenge is for.
#[derive(Debug, Clone, clap::Args)]
pub struct AtArgs {
    /// Block height or date (YYYY-MM-DD); default the synced tip.
    #[arg(long)]
    at: Option<String>,
    /// The entity (default: the only root).
    #[arg(long)]
    entity: Option<String>,
}

/// A proof given on the command line.
#[derive(Debug, clap::Args)]
pub struct ProofArgs {
    #[command(flatten)]
    at: AtArgs,
    /// The address a BIP-322 signature is for.
    #[arg(long, requires = "signature", conflicts_with = "psbt")]
    address: Option<String>,
    /// The BIP-322 signature (base64, simple or full).
    #[arg(long, requires = "address")]
    signature: Option<String>,
    /// A BIP-127 proof-of-reserves PSBT file (binary or base64).
    #[arg(long)]
    psbt: Option<PathBuf>,
    /// Print as JSON.
    #[arg(long)]
    json: bool,
}

/// The challenge for `entity` at `block`.
pub struct Challenge {
    /// The entity.
    pub entity: Entity,
    /// The block.
    pub block: BlockMeta,
    /// The message.
    pub message: String,
}

/// Resolves the challenge a command is about.
pub async fn challenge(store: &Store, at: &AtArgs) -> anyhow::Result<Challenge> {
    let block = resolve_at(store, at.at.as_deref()).await?;
    let entity = root_entity(store, at.entity.as_deref()).await?;
    let message = challenge_message(
        entity.code.as_str(),
        &utc_day(block.time),
        block.height,
        &block.hash.to_string(),
    );
    Ok(Challenge {
        entity,
        block,
        message,
    })
}

#[derive(Debug, Serialize)]
struct Checked {
    kind: &'static str,
    subject: String,
    sats: u64,
    height: u32,
    block_hash: String,
    detail: String,
    stored: Option<bool>,
}

/// Checks the proof given in `a` against the store at the challenge's block.
async fn check(store: &Store, a: &ProofArgs, c: &Challenge) -> anyhow::Result<(Proof, Checked)> {
    let network = store.network();
    let height = c.block.height;
    let hash = c.block.hash.to_string();
    if let (Some(address), Some(signature)) = (&a.address, &a.signature) {
        let format = tesoro_proof::bip322::verify(address, network, &c.message, signature)
            .with_context(|| format!("over the challenge at height {height}: {:?}", c.message))?;
        let addr = tesoro_core::wallet::parse_address(address, "--address", network)?.address;
        let proof = Proof::Bip322 {
            address: addr.clone(),
            format: format.as_str().into(),
            signature: signature.trim().to_string(),
        };
        return Ok((
            proof,
            Checked {
                kind: "bip322",
                subject: addr,
                sats: 0,
                height,
                block_hash: hash,
                detail: format!("BIP-322 {} signature valid", format.as_str()),
                stored: None,
            },
        ));
    }
    let Some(path) = &a.psbt else {
        anyhow::bail!("give --address A --signature BASE64 (BIP-322) or --psbt FILE (BIP-127)");
    };
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let psbt = ReservesPsbt::parse(&data).with_context(|| path.display().to_string())?;
    let unspent = store_unspent(store, height).await?;
    let (checked, _addrs) =
        tesoro_proof::check::check_bip127(&psbt, &c.message, &unspent, height, network)
            .with_context(|| {
                format!(
                    "{}: over the challenge at height {height} (only watched outputs unspent at that height count)",
                    path.display()
                )
            })?;
    let outpoints: Vec<String> = checked.inputs.iter().map(|(o, _)| o.to_string()).collect();
    let proof = Proof::Bip127 {
        psbt: psbt.to_base64(),
        commitment: checked.commitment.as_str().into(),
        outpoints: outpoints.clone(),
        sats: checked.sats,
    };
    Ok((
        proof,
        Checked {
            kind: "bip127",
            subject: format!("{} coins", outpoints.len()),
            sats: checked.sats,
            height,
            block_hash: hash,
            detail: format!(
                "BIP-127 proof valid ({} commitment{}), {} BTC unspent at height {height}",
                checked.commitment.as_str(),
                if checked.commitment == tesoro_proof::bip127::Commitment::Sha256d {
                    ", as bdk-reserves makes it"
                } else {
                    ""
                },
                btc(checked.sats)
            ),
            stored: None,
        },
    ))
}

fn print_checked(c: &Checked, json: bool) -> anyhow::Result<()> {
    if json {
        return output::json(c);
    }
    println!(
        "{} {}: {}{}",
        c.kind,
        c.subject,
        c.detail,
        match c.stored {
            Some(true) => "; stored",
            Some(false) => "; already stored",
            None => "",
        }
    );
    Ok(())
}

/// Runs a `tesoro proof` command.
pub async fn run(cmd: ProofCmd, g: &Globals) -> anyhow::Result<()> {
    let store = g.open_store().await?;
    let r = run_with(&store, cmd).await;
    store.close().await;
    r
}

async fn run_with(store: &Store, cmd: ProofCmd) -> anyhow::Result<()> {
    match cmd {
        ProofCmd::Challenge { at, json } => {
            let c = challenge(store, &at).await?;
            if json {
                return output::json(&serde_json::json!({
                    "entity": c.entity.code.as_str(),
                    "height": c.block.height,
                    "block_hash": c.block.hash.to_string(),
                    "date": utc_day(c.block.time),
                    "message": c.message,
                    "bip127_commitment_txid": tesoro_proof::bip127::Commitment::Sha256.txid(&c.message).to_string(),
                }));
            }
            println!("{}", c.message);
            eprintln!(
                "\nSign this exact message (one line, no trailing newline) with each wallet, offline:\n  - per address, BIP-322 (simple or full), then `tesoro proof add --at {} --address A --signature BASE64`\n  - or a BIP-127 proof-of-reserves PSBT over it, then `tesoro proof add --at {} --psbt FILE`",
                c.block.height, c.block.height
            );
            Ok(())
        }
        ProofCmd::Add(a) => {
            let c = challenge(store, &a.at).await?;
            let (proof, mut out) = check(store, &a, &c).await?;
            let new = store
                .add_proof(
                    c.entity.code.as_str(),
                    c.block.height,
                    &c.block.hash.to_string(),
                    &proof,
                )
                .await?;
            out.stored = Some(new);
            print_checked(&out, a.json)
        }
        ProofCmd::Verify(a) => {
            let c = challenge(store, &a.at).await?;
            let (_, out) = check(store, &a, &c).await?;
            print_checked(&out, a.json)
        }
        ProofCmd::List { entity, json } => {
            let e = root_entity(store, entity.as_deref()).await?;
            let rows = store.proofs(e.code.as_str(), None).await?;
            if json {
                return output::json(&rows);
            }
            if rows.is_empty() {
                println!(
                    "no proofs stored for {}: `tesoro proof challenge`, then `tesoro proof add`",
                    e.code
                );
                return Ok(());
            }
            let t = rows
                .iter()
                .map(|r| {
                    let (kind, subject) = match &r.proof {
                        Proof::Bip322 {
                            address, format, ..
                        } => (format!("bip322 {format}"), address.clone()),
                        Proof::Bip127 {
                            outpoints, sats, ..
                        } => (
                            "bip127".to_string(),
                            format!("{} coins, {} BTC", outpoints.len(), btc(*sats)),
                        ),
                    };
                    vec![r.height.to_string(), kind, subject, r.added_at.clone()]
                })
                .collect();
            println!(
                "{}",
                output::table(&["height", "kind", "covers", "added"], t, &[0])
            );
            Ok(())
        }
    }
}
