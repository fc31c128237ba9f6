//! `tesoro entity`: the tree of a state and its agencies.

use serde::Serialize;
use tesoro_core::entity::{check_name, tree_order};
use tesoro_core::EntityCode;
use tesoro_store::NewEntity;

use crate::output;
use crate::Globals;

/// `tesoro entity …`
#[derive(Debug, clap::Subcommand)]
pub enum EntityCmd {
    /// Add an entity (a state, or an agency under its parent).
    Add {
        /// Display name, e.g. "El Salvador".
        name: String,
        /// Unique code, e.g. SV or SV-ONBTC.
        #[arg(long)]
        code: String,
        /// Parent entity's code.
        #[arg(long)]
        parent: Option<String>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List entities as a tree.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct EntityOut {
    code: String,
    name: String,
    parent: Option<String>,
    depth: usize,
}

pub async fn run(cmd: EntityCmd, g: &Globals) -> anyhow::Result<()> {
    match cmd {
        EntityCmd::Add {
            name,
            code,
            parent,
            json,
        } => {
            let new = NewEntity {
                code: EntityCode::parse(&code)?,
                name: check_name(&name)?,
                parent: parent.as_deref().map(EntityCode::parse).transpose()?,
            };
            let store = g.open_store().await?;
            let e =
                tesoro_server::office::add_entity(&store, &super::user::cli_actor(), &new).await?;
            store.close().await;
            if json {
                output::json(&e)?;
            } else {
                match &e.parent {
                    Some(p) => println!("added entity {} ({}) under {p}", e.code, e.name),
                    None => println!("added entity {} ({})", e.code, e.name),
                }
            }
        }
        EntityCmd::List { json } => {
            let store = g.open_store().await?;
            let all = store.entities().await?;
            store.close().await;
            let rows: Vec<EntityOut> = tree_order(&all)
                .into_iter()
                .map(|r| EntityOut {
                    code: r.entity.code.to_string(),
                    name: r.entity.name.clone(),
                    parent: r.entity.parent.as_ref().map(|p| p.to_string()),
                    depth: r.depth,
                })
                .collect();
            if json {
                output::json(&rows)?;
            } else if rows.is_empty() {
                println!("no entities yet: tesoro entity add \"El Salvador\" --code SV");
            } else {
                let t = output::table(
                    &["code", "name", "parent"],
                    rows.into_iter()
                        .map(|r| {
                            let indent = if r.depth == 0 {
                                String::new()
                            } else {
                                format!("{}└ ", "  ".repeat(r.depth - 1))
                            };
                            vec![
                                format!("{indent}{}", r.code),
                                r.name,
                                r.parent.unwrap_or_default(),
                            ]
                        })
                        .collect(),
                    &[],
                );
                println!("{t}");
            }
        }
    }
    Ok(())
}
