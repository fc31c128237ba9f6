//! Users, their one grant (a role, optionally scoped to an entity and everything below it),
//! passwords (argon2id) and API tokens (random, shown once, stored as SHA-256).
//!
//! Every change here is appended to the audit log in the same transaction.

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use serde::Serialize;
use serde_json::json;
use sqlx::Row;
use tesoro_core::EntityCode;
use tesoro_store::{audit_append, AuditEntry, Store, StoreError};

use crate::error::ServerError;
use crate::secrets::{random_hex, sha256_hex};

/// What a user may do, before the entity scope narrows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything: users, entities, wallets, ledger changes.
    Admin,
    /// Ledger work: classify movements, import records; reads everything in scope.
    Accountant,
    /// Reads everything in scope, the audit log and users included; changes nothing.
    Auditor,
    /// Reads holdings, movements and reports in scope; changes nothing.
    Viewer,
}

impl Role {
    /// `admin`, `accountant`, `auditor` or `viewer`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Accountant => "accountant",
            Role::Auditor => "auditor",
            Role::Viewer => "viewer",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "admin" => Ok(Role::Admin),
            "accountant" => Ok(Role::Accountant),
            "auditor" => Ok(Role::Auditor),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!(
                "role {other:?} is not one of admin, accountant, auditor, viewer"
            )),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored user (never with the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Database id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// The entity the grant is scoped to (with everything below it); `None`: every entity.
    pub entity: Option<EntityCode>,
    /// When added (RFC 3339).
    pub created_at: String,
}

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 10;

fn check_username(name: &str) -> Result<String, ServerError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(name.to_string())
    } else {
        Err(ServerError::Invalid(format!(
            "user name {name:?} is not valid: use 1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit"
        )))
    }
}

fn check_password(pw: &str) -> Result<(), ServerError> {
    if pw.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ServerError::Invalid(format!(
            "the password is too short: use at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if pw.len() > 1024 {
        return Err(ServerError::Invalid(
            "the password is longer than 1024 bytes".into(),
        ));
    }
    Ok(())
}

/// Hashes a password with argon2id (default parameters, random salt); slow on purpose, so
/// it runs on the blocking pool.
pub async fn hash_password(password: &str) -> Result<String, ServerError> {
    let pw = password.to_string();
    tokio::task::spawn_blocking(move || {
        let hashed: Result<PasswordHash, _> = Argon2::default().hash_password(pw.as_bytes());
        hashed
            .map(|h| h.to_string())
            .map_err(|e| ServerError::Invalid(format!("cannot hash the password: {e}")))
    })
    .await
    .map_err(|e| ServerError::Invalid(format!("password hashing stopped: {e}")))?
}

/// Checks a password against a stored argon2 hash (constant time in the hash library).
pub async fn verify_password(password: &str, stored: &str) -> bool {
    let pw = password.to_string();
    let stored = stored.to_string();
    tokio::task::spawn_blocking(move || match PasswordHash::new(&stored) {
        Ok(h) => Argon2::default().verify_password(pw.as_bytes(), &h).is_ok(),
        Err(_) => false,
    })
    .await
    .unwrap_or(false)
}

fn user_from_row(r: &sqlx::any::AnyRow) -> Result<User, StoreError> {
    let role: String = r.try_get("role")?;
    let code: Option<String> = r.try_get("code")?;
    Ok(User {
        id: r.try_get("id")?,
        username: r.try_get("username")?,
        role: role
            .parse()
            .map_err(|e: String| StoreError::Corrupt(format!("users.role: {e}")))?,
        entity: code
            .map(|c| EntityCode::parse(&c).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()?,
        created_at: r.try_get("created_at")?,
    })
}

const USER_SELECT: &str =
    "SELECT u.id, u.username, u.role, e.code, u.created_at, u.password_hash, u.disabled \
     FROM users u LEFT JOIN entities e ON e.id = u.entity_id";

/// Adds a user; the change is audited as made by `system`. See [`create_user_as`].
pub async fn create_user(
    store: &Store,
    username: &str,
    password: &str,
    role: Role,
    scope_entity: Option<EntityCode>,
) -> Result<User, ServerError> {
    create_user_as(store, "system", username, password, role, scope_entity).await
}

/// Adds a user with a password and one grant, audited as made by `actor`.
pub async fn create_user_as(
    store: &Store,
    actor: &str,
    username: &str,
    password: &str,
    role: Role,
    scope_entity: Option<EntityCode>,
) -> Result<User, ServerError> {
    let username = check_username(username)?;
    check_password(password)?;
    let entity_id = match &scope_entity {
        Some(code) => Some(store.entity(code).await?.id),
        None => None,
    };
    let hash = hash_password(password).await?;
    let mut tx = store.begin_write().await?;
    let inserted = sqlx::query(
        "INSERT INTO users (username, password_hash, role, entity_id, disabled, created_at) \
         VALUES ($1, $2, $3, $4, 0, $5) RETURNING id",
    )
    .bind(&username)
    .bind(&hash)
    .bind(role.as_str())
    .bind(entity_id)
    .bind(crate::secrets::now_rfc3339())
    .fetch_one(&mut *tx)
    .await;
    let id: i64 = match inserted {
        Ok(r) => r.try_get("id").map_err(StoreError::from)?,
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            return Err(ServerError::Invalid(format!(
                "a user named {username:?} already exists (tesoro user list shows them)"
            )))
        }
        Err(e) => return Err(StoreError::from(e).into()),
    };
    let after = json!({"username": username, "role": role.as_str(), "entity": scope_entity});
    audit_append(
        &mut tx,
        store.backend(),
        &AuditEntry {
            actor,
            action: "user.add",
            subject: &format!("user:{username}"),
            before: None,
            after: Some(&after),
        },
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    user_by_id(store, id)
        .await?
        .ok_or_else(|| ServerError::Invalid("the new user vanished".into()))
}

/// Every user, by name.
pub async fn list_users(store: &Store) -> Result<Vec<User>, ServerError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{USER_SELECT} ORDER BY u.username"
    )))
    .fetch_all(store.pool())
    .await
    .map_err(StoreError::from)?;
    Ok(rows.iter().map(user_from_row).collect::<Result<_, _>>()?)
}

/// A user by id (disabled users included).
pub async fn user_by_id(store: &Store, id: i64) -> Result<Option<User>, ServerError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{USER_SELECT} WHERE u.id = $1"
    )))
    .bind(id)
    .fetch_optional(store.pool())
    .await
    .map_err(StoreError::from)?;
    Ok(row.as_ref().map(user_from_row).transpose()?)
}

/// A user and the stored password hash, for login; `None` if unknown or disabled.
pub(crate) async fn user_for_login(
    store: &Store,
    username: &str,
) -> Result<Option<(User, String)>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{USER_SELECT} WHERE u.username = $1 AND u.disabled = 0"
    )))
    .bind(username)
    .fetch_optional(store.pool())
    .await?;
    match row {
        None => Ok(None),
        Some(r) => {
            let hash: String = r.try_get("password_hash")?;
            Ok(Some((user_from_row(&r)?, hash)))
        }
    }
}

/// A new API token: the secret (shown once) and its stored id.
#[derive(Debug, Clone, Serialize)]
pub struct NewToken {
    /// Database id.
    pub id: i64,
    /// The token to send as `Authorization: Bearer …`. Not stored; shown once.
    pub token: String,
    /// The user it acts as.
    pub username: String,
}

/// Creates an API token acting as `username`, audited as made by `actor`.
pub async fn create_token(
    store: &Store,
    actor: &str,
    username: &str,
    label: &str,
) -> Result<NewToken, ServerError> {
    let user = user_for_login(store, username)
        .await?
        .ok_or_else(|| {
            ServerError::Invalid(format!(
                "no active user named {username:?} (tesoro user list shows them)"
            ))
        })?
        .0;
    let token = format!("tsr_{}", random_hex(32));
    let mut tx = store.begin_write().await?;
    let id: i64 = sqlx::query(
        "INSERT INTO api_tokens (user_id, token_hash, label, created_at, revoked) \
         VALUES ($1, $2, $3, $4, 0) RETURNING id",
    )
    .bind(user.id)
    .bind(sha256_hex(token.as_bytes()))
    .bind(label)
    .bind(crate::secrets::now_rfc3339())
    .fetch_one(&mut *tx)
    .await
    .and_then(|r| r.try_get("id"))
    .map_err(StoreError::from)?;
    let after = json!({"token_id": id, "user": user.username, "label": label});
    audit_append(
        &mut tx,
        store.backend(),
        &AuditEntry {
            actor,
            action: "token.create",
            subject: &format!("user:{}", user.username),
            before: None,
            after: Some(&after),
        },
    )
    .await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(NewToken {
        id,
        token,
        username: user.username,
    })
}

/// The active user an API token acts as.
pub(crate) async fn user_for_token(store: &Store, token: &str) -> Result<Option<User>, StoreError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "{USER_SELECT} JOIN api_tokens t ON t.user_id = u.id \
         WHERE t.token_hash = $1 AND t.revoked = 0 AND u.disabled = 0"
    )))
    .bind(sha256_hex(token.as_bytes()))
    .fetch_optional(store.pool())
    .await?;
    row.as_ref().map(user_from_row).transpose()
}
