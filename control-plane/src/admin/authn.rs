//! Who is calling: the bearer token of an Admin API call becomes a
//! [`Principal`]. Three kinds of token are accepted, all compared by their
//! SHA-256 digest: the bootstrap token (AIGW_ADMIN_TOKEN, a full admin),
//! API tokens (`api_tokens`, owned by a user or by nobody, with a role), and
//! login sessions (`sessions`, acting with their user's current role).
//! Passwords are stored as Argon2id PHC strings.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use tonic::metadata::MetadataMap;

use super::rbac::{Principal, PrincipalKind, Role};
use crate::auth::bearer;
use crate::crypto;
use crate::db::config::find_api_token_by_hash;
use crate::db::identity::{find_session_by_hash, find_user_by_id};
use crate::db::{AnyConnection, Db, now_ms};
use crate::error::{Error, Result};

/// Prefixes of the tokens we generate, so a leaked one is recognisable.
pub const API_TOKEN_PREFIX: &str = "aigw-t-";
pub const SESSION_PREFIX: &str = "aigw-s-";
/// Shorter passwords are refused.
pub const MIN_PASSWORD: usize = 8;

/// Authenticates the call's `authorization: Bearer TOKEN`.
pub async fn authenticate(
    db: &Db,
    bootstrap: &[[u8; 32]],
    meta: &MetadataMap,
) -> Result<Principal> {
    let Some(token) = bearer(meta) else {
        return Err(Error::Unauthenticated(
            "missing authorization: Bearer token",
        ));
    };
    let hash = crypto::sha256(token);
    if bootstrap.contains(&hash) {
        return Ok(Principal::bootstrap());
    }
    let hash = hex::encode(hash);
    db.run(move |conn| principal_for(conn, &hash, now_ms()))
        .await
}

/// The principal of a stored API token or session with this hash.
pub fn principal_for(conn: &mut AnyConnection, hash: &str, now: i64) -> Result<Principal> {
    if let Some(t) = find_api_token_by_hash(conn, hash)? {
        if t.revoked_at_ms != 0 {
            return Err(Error::Unauthenticated("token revoked"));
        }
        if t.expires_at_ms != 0 && t.expires_at_ms <= now {
            return Err(Error::Unauthenticated("token expired"));
        }
        let role = Role::parse(&t.role)
            .map_err(|_| Error::internal(format!("token {} has an unknown role", t.name)))?;
        let kind = PrincipalKind::ApiToken {
            token_id: t.id,
            name: t.name,
            expires_at_ms: t.expires_at_ms,
        };
        let Some(uid) = t.user_id else {
            // The stored bootstrap token, or one made by a bootstrap token:
            // no user behind it.
            return Ok(Principal {
                role,
                user_id: None,
                username: None,
                kind,
            });
        };
        let user = active_user(conn, &uid)?;
        // A token never does more than its owner may do now.
        if !user.0.includes(role) {
            return Err(Error::Unauthenticated(
                "token's role exceeds its owner's current role",
            ));
        }
        return Ok(Principal {
            role,
            user_id: Some(uid),
            username: Some(user.1),
            kind,
        });
    }
    if let Some(s) = find_session_by_hash(conn, hash)? {
        if s.expires_at_ms <= now {
            return Err(Error::Unauthenticated("session expired, log in again"));
        }
        let (role, username) = active_user(conn, &s.user_id)?;
        return Ok(Principal {
            role,
            user_id: Some(s.user_id),
            username: Some(username),
            kind: PrincipalKind::Session {
                session_id: s.id,
                expires_at_ms: s.expires_at_ms,
            },
        });
    }
    Err(Error::Unauthenticated("invalid token"))
}

/// (role, username) of an enabled user.
fn active_user(conn: &mut AnyConnection, id: &str) -> Result<(Role, String)> {
    let user = find_user_by_id(conn, id)?.ok_or(Error::Unauthenticated("user no longer exists"))?;
    if user.disabled {
        return Err(Error::Unauthenticated("user disabled"));
    }
    let role = Role::parse(&user.role)
        .map_err(|_| Error::internal(format!("user {} has an unknown role", user.username)))?;
    Ok((role, user.username))
}

/// Argon2id with a fresh salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String> {
    let hash: PasswordHash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| Error::internal(format!("password hashing failed: {e}")))?;
    Ok(hash.to_string())
}

/// Whether `password` matches the stored PHC string (false for a corrupt one).
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A PHC string no password matches, verified against for unknown users so
/// a login takes as long whether or not the user exists.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password never used").unwrap_or_default())
}

pub fn check_password_policy(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(Error::invalid(format!(
            "password must be at least {MIN_PASSWORD} characters"
        )));
    }
    if password.len() > super::users::MAX_PASSWORD {
        return Err(Error::invalid(format!(
            "password must be at most {} bytes",
            super::users::MAX_PASSWORD
        )));
    }
    if password.chars().any(char::is_control) {
        return Err(Error::invalid(
            "password must not contain control characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::config::{ApiTokenRow, insert_api_token};
    use crate::db::identity::{SessionRow, UserRow, insert_session, insert_user};
    use crate::db::testing::temp_db;

    #[tokio::test]
    async fn expired_tokens_and_sessions_are_refused() {
        let t = temp_db();
        let r =
            t.db.run(|conn| {
                insert_user(
                    conn,
                    &UserRow {
                        id: "u1".into(),
                        username: "ann".into(),
                        password_hash: "x".into(),
                        role: "viewer".into(),
                        disabled: false,
                        created_at_ms: 1,
                        updated_at_ms: 1,
                        team_id: None,
                    },
                )?;
                insert_api_token(
                    conn,
                    &ApiTokenRow {
                        id: "t1".into(),
                        name: "ci".into(),
                        token_hash: crypto::sha256_hex("tok"),
                        role: "viewer".into(),
                        created_at_ms: 1,
                        user_id: Some("u1".into()),
                        token_hint: String::new(),
                        expires_at_ms: 1000,
                        revoked_at_ms: 0,
                    },
                )?;
                insert_session(
                    conn,
                    &SessionRow {
                        id: "s1".into(),
                        user_id: "u1".into(),
                        token_hash: crypto::sha256_hex("sess"),
                        created_at_ms: 1,
                        expires_at_ms: 1000,
                    },
                )?;
                let tok = crypto::sha256_hex("tok");
                let sess = crypto::sha256_hex("sess");
                Ok([
                    principal_for(conn, &tok, 999).map(|p| p.role),
                    principal_for(conn, &tok, 1000).map(|p| p.role),
                    principal_for(conn, &sess, 999).map(|p| p.role),
                    principal_for(conn, &sess, 1000).map(|p| p.role),
                    principal_for(conn, &crypto::sha256_hex("other"), 1).map(|p| p.role),
                ])
            })
            .await
            .unwrap();
        assert!(matches!(r[0], Ok(Role::Viewer)));
        assert!(matches!(r[1], Err(Error::Unauthenticated("token expired"))));
        assert!(matches!(r[2], Ok(Role::Viewer)));
        assert!(matches!(
            r[3],
            Err(Error::Unauthenticated("session expired, log in again"))
        ));
        assert!(matches!(r[4], Err(Error::Unauthenticated("invalid token"))));
    }

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "not a phc string"));
        assert_ne!(h, hash_password("correct horse").unwrap(), "salted");
        assert!(!verify_password("", decoy_hash()));
        assert!(check_password_policy("short").is_err());
        assert!(check_password_policy("long enough").is_ok());
    }
}
