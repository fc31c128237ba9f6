//! Entities: a state and its agencies, as a tree.

use serde::{Deserialize, Serialize};

/// A code names an entity in commands and reports (`SV`, `SV-ONBTC`, `PK-PCC`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntityCode(String);

/// Why an entity code or name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntityError {
    /// The code has characters or a length tesoro does not accept.
    #[error(
        "entity code {0:?} is not valid: use 1 to 32 characters, upper-case letters, digits, '-' or '_', starting with a letter or digit (for example SV or SV-ONBTC)"
    )]
    BadCode(String),
    /// The name is empty or too long.
    #[error("entity name must be 1 to 200 characters")]
    BadName,
}

impl EntityCode {
    /// Checks and wraps a code. Lower-case letters are upper-cased.
    pub fn parse(s: &str) -> Result<Self, EntityError> {
        let code = s.trim().to_ascii_uppercase();
        let ok = !code.is_empty()
            && code.len() <= 32
            && code
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_')
            && code
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric());
        if ok {
            Ok(EntityCode(code))
        } else {
            Err(EntityError::BadCode(s.to_string()))
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EntityCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks an entity's display name.
pub fn check_name(name: &str) -> Result<String, EntityError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(EntityError::BadName);
    }
    Ok(name.to_string())
}

/// A stored entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    /// Database id.
    pub id: i64,
    /// Unique code.
    pub code: EntityCode,
    /// Display name.
    pub name: String,
    /// Code of the parent entity, if any.
    pub parent: Option<EntityCode>,
}

/// An entity placed in its tree, for listing: `depth` 0 is a root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TreeRow<'a> {
    /// The entity.
    pub entity: &'a Entity,
    /// Distance from its root.
    pub depth: usize,
}

/// Orders entities as a tree (each parent before its children, siblings by code).
/// Entities whose parent is missing from `all` are treated as roots.
pub fn tree_order(all: &[Entity]) -> Vec<TreeRow<'_>> {
    let known: std::collections::HashSet<&EntityCode> = all.iter().map(|e| &e.code).collect();
    let mut roots: Vec<&Entity> = all
        .iter()
        .filter(|e| e.parent.as_ref().is_none_or(|p| !known.contains(p)))
        .collect();
    roots.sort_by(|a, b| a.code.cmp(&b.code));
    let mut out = Vec::with_capacity(all.len());
    // Depth-first with an explicit stack; a cycle cannot occur because a parent must exist
    // before its child is added, but the visited set keeps this total anyway.
    let mut visited = std::collections::HashSet::new();
    let mut stack: Vec<(&Entity, usize)> = roots.into_iter().rev().map(|e| (e, 0)).collect();
    while let Some((e, depth)) = stack.pop() {
        if !visited.insert(&e.code) {
            continue;
        }
        out.push(TreeRow { entity: e, depth });
        let mut children: Vec<&Entity> = all
            .iter()
            .filter(|c| c.parent.as_ref() == Some(&e.code))
            .collect();
        children.sort_by(|a, b| b.code.cmp(&a.code));
        stack.extend(children.into_iter().map(|c| (c, depth + 1)));
    }
    out
}

use std::collections::BTreeMap;

/// Rolls per-entity own holdings up the tree: returns (code → total with descendants).
pub fn roll_up(
    own: &BTreeMap<String, u64>,
    parent_of: &BTreeMap<String, Option<String>>,
) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = parent_of.keys().map(|k| (k.clone(), 0)).collect();
    for (code, sats) in own {
        let mut cur = Some(code.clone());
        let mut steps = 0;
        while let Some(c) = cur {
            *out.entry(c.clone()).or_default() += sats;
            cur = parent_of.get(&c).cloned().flatten();
            steps += 1;
            if steps > 64 {
                break;
            }
        }
    }
    out
}

/// Each entity's parent within `in_scope` (code → parent code; `None` at the top of the
/// scope, also when the real parent lies outside it), as [`roll_up`] takes it.
pub fn parents_within(in_scope: &[Entity]) -> BTreeMap<String, Option<String>> {
    let codes: std::collections::BTreeSet<&EntityCode> = in_scope.iter().map(|e| &e.code).collect();
    in_scope
        .iter()
        .map(|e| {
            let p = e
                .parent
                .as_ref()
                .filter(|p| codes.contains(p))
                .map(|p| p.to_string());
            (e.code.to_string(), p)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(id: i64, code: &str, parent: Option<&str>) -> Entity {
        Entity {
            id,
            code: EntityCode::parse(code).unwrap(),
            name: code.to_string(),
            parent: parent.map(|p| EntityCode::parse(p).unwrap()),
        }
    }

    #[test]
    fn codes() {
        assert_eq!(EntityCode::parse("sv-onbtc").unwrap().as_str(), "SV-ONBTC");
        assert!(EntityCode::parse("").is_err());
        assert!(EntityCode::parse("-SV").is_err());
        assert!(EntityCode::parse("S V").is_err());
        assert!(EntityCode::parse(&"A".repeat(33)).is_err());
    }

    #[test]
    fn tree_puts_children_under_parents() {
        let all = vec![
            e(3, "SV-ONBTC", Some("SV")),
            e(1, "PK", None),
            e(2, "SV", None),
            e(4, "PK-PCC", Some("PK")),
            e(5, "PK-FIN", Some("PK")),
        ];
        let rows: Vec<(String, usize)> = tree_order(&all)
            .iter()
            .map(|r| (r.entity.code.to_string(), r.depth))
            .collect();
        assert_eq!(
            rows,
            vec![
                ("PK".into(), 0),
                ("PK-FIN".into(), 1),
                ("PK-PCC".into(), 1),
                ("SV".into(), 0),
                ("SV-ONBTC".into(), 1)
            ]
        );
    }

    #[test]
    fn roll_up_sums_agencies_into_the_state() {
        let own: BTreeMap<String, u64> =
            [("SV-ONBTC".to_string(), 5), ("SV-BCR".to_string(), 7)].into();
        let parents: BTreeMap<String, Option<String>> = [
            ("SV".to_string(), None),
            ("SV-ONBTC".to_string(), Some("SV".to_string())),
            ("SV-BCR".to_string(), Some("SV".to_string())),
        ]
        .into();
        let r = roll_up(&own, &parents);
        assert_eq!(r["SV"], 12);
        assert_eq!(r["SV-BCR"], 7);
    }
}
