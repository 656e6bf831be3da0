//! Helpers for the Admin API tests: a service on a temp database, requests
//! as the bootstrap token or as a user, and users of each role.

use std::sync::{Arc, Mutex};

use aigw_proto::pb::admin::identity_service_server::IdentityService;
use aigw_proto::pb::admin::{CreateUserRequest, LoginRequest};
use tonic::Request;
use tonic::metadata::MetadataValue;

use super::AdminSvc;
use crate::compile::compile;
use crate::crypto::{self, MasterKey};
use crate::db::Db;
use crate::db::testing::TempDb;
use crate::push::{Publisher, Registry};

/// The bootstrap token of [`svc`].
pub const TOKEN: &str = "admin-test-token";

pub fn svc(t: &TempDb) -> AdminSvc {
    svc_on(t.db.clone())
}

/// The service on an empty database.
pub fn svc_on(db: Db) -> AdminSvc {
    let master = MasterKey::from_hex(&"5a".repeat(32)).unwrap();
    let snapshot = compile(&crate::db::config::ConfigRows::default(), &master, None).unwrap();
    AdminSvc {
        db,
        master,
        publisher: Publisher::new(snapshot),
        registry: Registry::default(),
        bootstrap_tokens: Arc::from(vec![crypto::sha256(TOKEN)]),
        write_lock: Arc::new(Mutex::new(())),
        trusted_proxies: Arc::from(Vec::new()),
        checker: crate::health::Checker::detached(),
        oauth: crate::oauth::Handle::detached().unwrap(),
        budgets: crate::budgets::Budgets::detached(),
    }
}

/// A request with the bootstrap token.
pub fn req<T>(msg: T) -> Request<T> {
    req_as(msg, TOKEN)
}

/// A request with `token`.
pub fn req_as<T>(msg: T, token: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        MetadataValue::try_from(format!("Bearer {token}")).unwrap(),
    );
    r
}

/// Creates `name` with `role` (as the bootstrap admin) and logs them in;
/// returns their session token.
pub async fn user(s: &AdminSvc, name: &str, role: &str) -> String {
    let password = format!("{name}-password");
    s.create_user(req(CreateUserRequest {
        username: name.into(),
        password: password.clone(),
        role: role.into(),
    }))
    .await
    .unwrap();
    s.login(Request::new(LoginRequest {
        username: name.into(),
        password,
    }))
    .await
    .unwrap()
    .into_inner()
    .session_token
}
