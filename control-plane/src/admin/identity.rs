//! IdentityService: login and sessions, users, API tokens, the role table
//! and the audit log.

use aigw_proto::pb::admin::identity_service_server::IdentityService;
use aigw_proto::pb::admin::{
    ApiTokenList, AuditList, AuditQuery, Caller, CreateApiTokenRequest, CreateApiTokenResult,
    CreateUserRequest, CreateUserResult, ListApiTokensRequest, ListRolesRequest, ListUsersRequest,
    LoginRequest, LoginResult, LogoutRequest, LogoutResult, NameRequest, Permission,
    ResetPasswordRequest, ResetPasswordResult, RevokeResult, RoleInfo, RoleList, UpdateUserRequest,
    UserInfo, UserList, WhoAmIRequest,
};
use tonic::{Request, Response, Status};

use super::authn::{check_password_policy, decoy_hash};
use super::client_keys::usernames;
use super::rbac::{self, Principal, PrincipalKind, Role, Target};
use super::throttle;
use super::{AdminSvc, Change, Object, audit, tokens, users};
use crate::db::identity::{self, delete_session, find_user};
use crate::db::{config, now_ms};
use crate::error::{Error, Result};

const BAD_LOGIN: &str = "invalid username or password";

fn as_user(u: &identity::UserRow) -> Result<Principal> {
    Ok(Principal {
        role: Role::parse(&u.role)?,
        user_id: Some(u.id.clone()),
        username: Some(u.username.clone()),
        kind: PrincipalKind::Session {
            session_id: String::new(),
            expires_at_ms: 0,
        },
    })
}

const NO_CURRENT_PASSWORD: &str =
    "changing your own password needs the current one (current_password)";
const BAD_CURRENT_PASSWORD: &str = "the current password (current_password) is not right";

#[tonic::async_trait]
impl IdentityService for AdminSvc {
    async fn login(&self, request: Request<LoginRequest>) -> Result<Response<LoginResult>, Status> {
        let source = self.client_ip(&request);
        let LoginRequest { username, password } = request.into_inner();
        // No user can have a longer name or password: refused before any
        // counting, lookup or hashing.
        if username.len() > throttle::MAX_USERNAME || password.len() > users::MAX_PASSWORD {
            return Err(Error::Unauthenticated(BAD_LOGIN).into());
        }
        let attempt = self
            .begin_attempt(source, &username, "login", "logins")
            .await?;
        let name = username.clone();
        let user = self.read(move |conn| find_user(conn, &name)).await?;
        // Unknown users cost a verification too, so timing does not tell
        // which usernames exist.
        let phc = user
            .as_ref()
            .map_or_else(|| decoy_hash().to_string(), |u| u.password_hash.clone());
        let ok = {
            let _slot = throttle::verification_slot().await;
            users::verify_async(password, phc).await?
        };
        let user = match user {
            Some(u) if ok && !u.disabled => {
                attempt.succeeded();
                u
            }
            other => {
                attempt.failed();
                // The username only when such a user exists: people type
                // passwords into that field too.
                let (user, reason) = match &other {
                    Some(u) if u.disabled => (u.username.as_str(), "user disabled"),
                    Some(u) => (u.username.as_str(), "wrong password"),
                    None => ("", "no such user"),
                };
                tracing::warn!(%source, user, reason, "login refused");
                return Err(Error::Unauthenticated(BAD_LOGIN).into());
            }
        };
        let who = as_user(&user)?;
        let uid = user.id.clone();
        let (session_token, expires_at_ms) = self
            .mutate(&who, Object::new("session", &username), move |conn, _| {
                Ok((
                    users::open_session(conn, &uid)?,
                    Some(Change::account("login")),
                ))
            })
            .await?;
        let teams = self.read(users::team_names).await?;
        Ok(Response::new(LoginResult {
            session_token,
            expires_at_ms,
            user: Some(users::info(&user, &teams)),
        }))
    }

    async fn logout(
        &self,
        request: Request<LogoutRequest>,
    ) -> Result<Response<LogoutResult>, Status> {
        let (p, _) = self.caller(&request, rbac::LOGOUT).await?;
        let PrincipalKind::Session { session_id, .. } = p.kind.clone() else {
            return Ok(Response::new(LogoutResult { ended: false }));
        };
        let name = p.username.clone().unwrap_or_default();
        let ended = self
            .mutate(&p, Object::new("session", name), move |conn, _| {
                let ended = delete_session(conn, &session_id)?;
                Ok((ended, ended.then(|| Change::account("logout"))))
            })
            .await?;
        Ok(Response::new(LogoutResult { ended }))
    }

    async fn who_am_i(&self, request: Request<WhoAmIRequest>) -> Result<Response<Caller>, Status> {
        let (p, _) = self.caller(&request, rbac::WHO_AM_I).await?;
        let (kind, token_name) = match &p.kind {
            PrincipalKind::Bootstrap => ("bootstrap", String::new()),
            PrincipalKind::Session { .. } => ("session", String::new()),
            PrincipalKind::ApiToken { name, .. } => ("api_token", name.clone()),
        };
        Ok(Response::new(Caller {
            kind: kind.into(),
            username: p.username.clone().unwrap_or_default(),
            role: p.role.as_str().into(),
            token_name,
            allowed_methods: rbac::permissions(p.role)
                .into_iter()
                .map(|(m, _)| m.to_string())
                .collect(),
        }))
    }

    async fn list_roles(
        &self,
        request: Request<ListRolesRequest>,
    ) -> Result<Response<RoleList>, Status> {
        self.caller(&request, rbac::LIST_ROLES).await?;
        let roles = Role::ALL
            .into_iter()
            .map(|r| RoleInfo {
                name: r.as_str().into(),
                description: r.description().into(),
                permissions: rbac::permissions(r)
                    .into_iter()
                    .map(|(method, scope)| Permission {
                        method: method.into(),
                        scope: scope.into(),
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(RoleList {
            roles,
            public_methods: rbac::public_methods()
                .into_iter()
                .map(String::from)
                .collect(),
        }))
    }

    async fn create_user(
        &self,
        request: Request<CreateUserRequest>,
    ) -> Result<Response<CreateUserResult>, Status> {
        let (p, _) = self.caller(&request, rbac::CREATE_USER).await?;
        let req = request.into_inner();
        let role = users::validate_new(&req.username, &req.password, &req.role)?;
        let (password, generated_password) = if req.password.is_empty() {
            let g = users::generate_password()?;
            (g.clone(), g)
        } else {
            (req.password, String::new())
        };
        let hash = users::hash_async(password).await?;
        let name = req.username.clone();
        let user = self
            .mutate(&p, Object::new("user", &name), move |conn, _| {
                let row = users::insert(conn, &req.username, hash, role)?;
                Ok((
                    row,
                    Some(Change::account("create").with(format!("role={role}"))),
                ))
            })
            .await?;
        Ok(Response::new(CreateUserResult {
            user: Some(users::info(&user, &Default::default())),
            generated_password,
        }))
    }

    async fn list_users(
        &self,
        request: Request<ListUsersRequest>,
    ) -> Result<Response<UserList>, Status> {
        let (_, access) = self.caller(&request, rbac::LIST_USERS).await?;
        let (rows, teams) = self
            .read(|c| Ok((identity::list_users(c)?, users::team_names(c)?)))
            .await?;
        let users = rows
            .iter()
            .filter(|u| access.owner().is_none_or(|uid| uid == u.id))
            .map(|u| users::info(u, &teams))
            .collect();
        Ok(Response::new(UserList { users }))
    }

    async fn update_user(
        &self,
        request: Request<UpdateUserRequest>,
    ) -> Result<Response<UserInfo>, Status> {
        let (p, _) = self.caller(&request, rbac::UPDATE_USER).await?;
        let req = request.into_inner();
        let name = req.username.clone();
        let user = self
            .mutate(&p, Object::new("user", name), move |conn, _| {
                let (row, changes, toggled) = users::update(conn, &req)?;
                // (Dis|en)abling takes the user's client keys out of the
                // snapshot or back: a configuration change.
                let change = if toggled {
                    Change::new("update")
                } else {
                    Change::account("update")
                };
                Ok((row, changes.map(|c| change.with(c))))
            })
            .await?;
        let teams = self.read(users::team_names).await?;
        Ok(Response::new(users::info(&user, &teams)))
    }

    async fn reset_password(
        &self,
        request: Request<ResetPasswordRequest>,
    ) -> Result<Response<ResetPasswordResult>, Status> {
        let (p, _) = self.caller(&request, rbac::RESET_PASSWORD).await?;
        let source = self.client_ip(&request);
        let req = request.into_inner();
        if req.current_password.len() > users::MAX_PASSWORD {
            return Err(Error::PermissionDenied(BAD_CURRENT_PASSWORD.into()).into());
        }
        let name = req.username.clone();
        let target = self.read(move |conn| find_user(conn, &name)).await?;
        let Some(target) = target else {
            // Only those who may reset anyone's password learn who exists.
            rbac::authorize(&p, rbac::RESET_PASSWORD, Target::Owned(None))?;
            return Err(Error::NotFound(format!("user {:?} does not exist", req.username)).into());
        };
        rbac::authorize(&p, rbac::RESET_PASSWORD, Target::Owned(Some(&target.id)))?;
        if p.user_id.as_deref() == Some(target.id.as_str()) {
            // A guess at the current password is a login attempt: counted
            // by the same throttle, and hashed in the same few slots (a
            // session could otherwise guess without limit, and run as many
            // Argon2 hashes at once as it sends requests).
            let attempt = self
                .begin_attempt(
                    source,
                    &target.username,
                    "password check",
                    "password checks",
                )
                .await?;
            let ok = {
                let _slot = throttle::verification_slot().await;
                users::verify_async(req.current_password.clone(), target.password_hash.clone())
                    .await?
            };
            if !ok {
                attempt.failed();
                tracing::warn!(%source, user = %target.username, "password check refused");
                let why = if req.current_password.is_empty() {
                    NO_CURRENT_PASSWORD
                } else {
                    BAD_CURRENT_PASSWORD
                };
                return Err(Error::PermissionDenied(why.into()).into());
            }
            attempt.succeeded();
        }
        let (password, generated_password) = if req.new_password.is_empty() {
            let g = users::generate_password()?;
            (g.clone(), g)
        } else {
            check_password_policy(&req.new_password)?;
            (req.new_password, String::new())
        };
        let hash = users::hash_async(password).await?;
        let uid = target.id.clone();
        self.mutate(&p, Object::new("user", &target.username), move |conn, _| {
            let revoked = users::set_password(conn, &uid, hash)?;
            let change = Change::account("reset_password");
            let change = if revoked > 0 {
                change.with(format!("revoked {revoked} API token(s)"))
            } else {
                change
            };
            Ok(((), Some(change)))
        })
        .await?;
        Ok(Response::new(ResetPasswordResult { generated_password }))
    }

    async fn create_api_token(
        &self,
        request: Request<CreateApiTokenRequest>,
    ) -> Result<Response<CreateApiTokenResult>, Status> {
        let (p, _) = self.caller(&request, rbac::CREATE_API_TOKEN).await?;
        let req = request.into_inner();
        let (role, expires_at_ms) = tokens::validate(&p, &req, now_ms())?;
        let who = p.clone();
        let (token, row) = self
            .mutate(&p, Object::new("api_token", &req.name), move |conn, _| {
                let made = tokens::create(conn, &who, &req, role, expires_at_ms)?;
                Ok((
                    made,
                    Some(Change::account("create").with(format!("role={role}"))),
                ))
            })
            .await?;
        let names = self.read(usernames).await?;
        Ok(Response::new(CreateApiTokenResult {
            token,
            info: Some(tokens::info(&row, &names)),
        }))
    }

    async fn list_api_tokens(
        &self,
        request: Request<ListApiTokensRequest>,
    ) -> Result<Response<ApiTokenList>, Status> {
        let (_, access) = self.caller(&request, rbac::LIST_API_TOKENS).await?;
        let tokens = self
            .read(move |conn| {
                let names = usernames(conn)?;
                Ok(config::api_tokens(conn, access.owner())?
                    .iter()
                    .map(|t| tokens::info(t, &names))
                    .collect())
            })
            .await?;
        Ok(Response::new(ApiTokenList { tokens }))
    }

    async fn revoke_api_token(
        &self,
        request: Request<NameRequest>,
    ) -> Result<Response<RevokeResult>, Status> {
        let (p, _) = self.caller(&request, rbac::REVOKE_API_TOKEN).await?;
        let name = request.into_inner().name;
        let who = p.clone();
        let n = name.clone();
        let r = self
            .mutate(&p, Object::new("api_token", &name), move |conn, _| {
                let Some(t) = config::find_api_token(conn, &n)? else {
                    rbac::authorize(&who, rbac::REVOKE_API_TOKEN, Target::Owned(None))?;
                    return Err(Error::NotFound(format!("api_token {n:?} does not exist")));
                };
                rbac::authorize(
                    &who,
                    rbac::REVOKE_API_TOKEN,
                    Target::Owned(t.user_id.as_deref()),
                )?;
                let revoked = config::revoke_api_token(conn, &t.id, now_ms())?;
                Ok((
                    RevokeResult { revoked },
                    revoked.then(|| Change::account("revoke")),
                ))
            })
            .await?;
        Ok(Response::new(r))
    }

    async fn list_audit_log(
        &self,
        request: Request<AuditQuery>,
    ) -> Result<Response<AuditList>, Status> {
        self.caller(&request, rbac::LIST_AUDIT_LOG).await?;
        let f = audit::filter(request.get_ref())?;
        let list = self.read(move |conn| audit::list(conn, &f)).await?;
        Ok(Response::new(list))
    }
}

impl AdminSvc {
    /// Logs a throttled sign-in (or password check) with its source, and
    /// the username only when such a user exists (a password typed into
    /// the username field is never logged). The first refusal of a throttle
    /// window is audited too (actor `anonymous`), so the log shows when
    /// guessing was stopped without an entry per attempt.
    /// A password guess may begin, or the caller is throttled: refused
    /// with when to try again, and the refusal logged and audited (see
    /// [`Self::report_throttled`]). `what` names one attempt, `plural`
    /// several, in the caller's message.
    async fn begin_attempt(
        &self,
        source: std::net::IpAddr,
        username: &str,
        what: &'static str,
        plural: &str,
    ) -> Result<throttle::Attempt, Status> {
        match throttle::logins().begin(source, username) {
            Ok(a) => Ok(a),
            Err(r) => {
                let (limit, secs) = (r.limit.as_str(), r.secs);
                self.report_throttled(source, username, r, what).await;
                Err(throttled(
                    format!("too many failed {plural} for this {limit}; try again in {secs} s"),
                    secs,
                ))
            }
        }
    }

    async fn report_throttled(
        &self,
        source: std::net::IpAddr,
        username: &str,
        r: throttle::Refused,
        what: &'static str,
    ) {
        let name = username.to_string();
        let known = self
            .read(move |conn| find_user(conn, &name))
            .await
            .ok()
            .flatten()
            .map(|u| u.username);
        tracing::warn!(
            %source,
            user = known.as_deref().unwrap_or(""),
            limit = r.limit.as_str(),
            secs = r.secs,
            first = r.first,
            "{what} throttled"
        );
        if !r.first {
            return;
        }
        let detail = format!(
            "{what}s refused for {} s: too many failures for this {} (from {source})",
            r.secs,
            r.limit.as_str()
        );
        let what = Object::new("session", known.unwrap_or_default());
        let written = self
            .db
            .run(move |conn| {
                let change = Change::account("throttle").with(detail);
                let rows = super::audit_rows("anonymous", None, vec![(what, change)])?;
                crate::db::identity::insert_audit(conn, &rows)
            })
            .await;
        if let Err(e) = written {
            tracing::warn!(error = %e, "could not audit a throttled sign-in");
        }
    }
}

/// A throttled attempt: `RESOURCE_EXHAUSTED`, with the wait also in the
/// `retry-after` metadata (seconds), which admin-web turns into the HTTP
/// `Retry-After` header.
fn throttled(message: String, secs: u64) -> Status {
    let mut s = Status::resource_exhausted(message);
    s.metadata_mut()
        .insert("retry-after", tonic::metadata::MetadataValue::from(secs));
    s
}
