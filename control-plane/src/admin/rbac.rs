//! Role-based access control, in one place: the table from every Admin API
//! method (full gRPC name) to the roles that may call it, and the one
//! function, [`authorize`], that every handler calls with the caller and the
//! object it is about to touch. A method missing from the table is refused.
//!
//! Each rule names the roles that may act on any object (`all`) and those
//! that may act only on their own (`own`): for them a call about no
//! particular object is allowed but scoped to their objects (lists are
//! filtered in the query, new objects are theirs), and a call on someone
//! else's object, or on one no user owns, is refused.

use crate::error::Error;

/// What a caller may do, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Everything, users and roles included.
    Admin,
    /// Configuration (providers, pricing, routes) and everyone's client keys;
    /// reads everything; no user management.
    Operator,
    /// Reads everything except secrets (which nobody reads).
    Viewer,
    /// Their own client keys, and the traces and usage of those keys.
    Member,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Operator, Role::Viewer, Role::Member];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Viewer => "viewer",
            Role::Member => "member",
        }
    }

    pub fn parse(s: &str) -> Result<Role, Error> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown role {s:?} (expected admin, operator, viewer or member)"
                ))
            })
    }

    pub fn description(self) -> &'static str {
        match self {
            Role::Admin => "everything, including users and roles",
            Role::Operator => {
                "providers, provider keys, pricing, routes and everyone's client keys; reads everything; no user management"
            }
            Role::Viewer => "reads everything except secrets",
            Role::Member => "their own client keys, and the traces and usage of those keys",
        }
    }

    /// Whether this role holds every permission of `other`: the roles a
    /// caller may hand out (to an API token) are the ones its role includes.
    /// Not a total order: a viewer reads everything but creates nothing, a
    /// member creates (their own) keys but reads little, so neither includes
    /// the other.
    pub fn includes(self, other: Role) -> bool {
        match self {
            Role::Admin => true,
            Role::Operator => other != Role::Admin,
            Role::Viewer => other == Role::Viewer,
            Role::Member => other == Role::Member,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may call a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Anyone, without a token.
    Public,
    Roles {
        /// On any object.
        all: &'static [Role],
        /// Only on their own objects.
        own: &'static [Role],
    },
}

use Role::{Admin as A, Member as M, Operator as O, Viewer as V};

const fn roles(all: &'static [Role], own: &'static [Role]) -> Rule {
    Rule::Roles { all, own }
}
/// Admins and operators change configuration.
const CONFIG_WRITE: Rule = roles(&[A, O], &[]);
/// Everyone but members reads it.
const READ: Rule = roles(&[A, O, V], &[]);
/// Members too, on their own objects.
const READ_OWN: Rule = roles(&[A, O, V], &[M]);
/// Admins and operators on any client key, members on theirs.
const KEY_WRITE: Rule = roles(&[A, O], &[M]);
const ADMIN_ONLY: Rule = roles(&[A], &[]);
/// Anyone authenticated, about themselves.
const SELF: Rule = roles(&[A, O, V, M], &[]);
/// Admins on anyone's, the others on their own.
const ADMIN_OR_OWN: Rule = roles(&[A], &[O, V, M]);

macro_rules! methods {
    ($($konst:ident = $svc:literal / $name:literal => $rule:expr;)*) => {
        $(pub const $konst: &str = concat!("/aigw.admin.v1.", $svc, "/", $name);)*
        /// Every Admin API method and its rule.
        pub const RULES: &[(&str, Rule)] = &[$(($konst, $rule),)*];
    };
}

methods! {
    UPSERT_PROVIDER = "AdminService" / "UpsertProvider" => CONFIG_WRITE;
    DELETE_PROVIDER = "AdminService" / "DeleteProvider" => CONFIG_WRITE;
    LIST_PROVIDERS = "AdminService" / "ListProviders" => READ;
    UPSERT_PRICE = "AdminService" / "UpsertPrice" => CONFIG_WRITE;
    DELETE_PRICE = "AdminService" / "DeletePrice" => CONFIG_WRITE;
    LIST_PRICING = "AdminService" / "ListPricing" => READ;
    UPSERT_CLIENT_KEY = "AdminService" / "UpsertClientKey" => KEY_WRITE;
    DELETE_CLIENT_KEY = "AdminService" / "DeleteClientKey" => KEY_WRITE;
    LIST_CLIENT_KEYS = "AdminService" / "ListClientKeys" => READ_OWN;
    REVOKE_CLIENT_KEY = "AdminService" / "RevokeClientKey" => KEY_WRITE;
    UPSERT_ROUTE = "AdminService" / "UpsertRoute" => CONFIG_WRITE;
    DELETE_ROUTE = "AdminService" / "DeleteRoute" => CONFIG_WRITE;
    LIST_ROUTES = "AdminService" / "ListRoutes" => READ;
    LIST_NODES = "AdminService" / "ListNodes" => READ;
    CREATE_NODE_CREDENTIAL = "AdminService" / "CreateNodeCredential" => ADMIN_ONLY;
    LIST_NODE_CREDENTIALS = "AdminService" / "ListNodeCredentials" => READ;
    REVOKE_NODE_CREDENTIAL = "AdminService" / "RevokeNodeCredential" => ADMIN_ONLY;
    DELETE_NODE_CREDENTIAL = "AdminService" / "DeleteNodeCredential" => ADMIN_ONLY;
    CHECK_CREDENTIAL = "AdminService" / "CheckCredential" => CONFIG_WRITE;
    LIST_CREDENTIAL_HEALTH = "AdminService" / "ListCredentialHealth" => READ;
    UPSERT_OAUTH_TEMPLATE = "AdminService" / "UpsertOAuthTemplate" => CONFIG_WRITE;
    DELETE_OAUTH_TEMPLATE = "AdminService" / "DeleteOAuthTemplate" => CONFIG_WRITE;
    LIST_OAUTH_TEMPLATES = "AdminService" / "ListOAuthTemplates" => READ;
    START_OAUTH_CONNECT = "AdminService" / "StartOAuthConnect" => CONFIG_WRITE;
    COMPLETE_OAUTH_CONNECT = "AdminService" / "CompleteOAuthConnect" => CONFIG_WRITE;
    START_OAUTH_DEVICE = "AdminService" / "StartOAuthDevice" => CONFIG_WRITE;
    POLL_OAUTH_DEVICE = "AdminService" / "PollOAuthDevice" => CONFIG_WRITE;
    REFRESH_OAUTH_ACCOUNT = "AdminService" / "RefreshOAuthAccount" => CONFIG_WRITE;
    LIST_OAUTH_ACCOUNTS = "AdminService" / "ListOAuthAccounts" => READ;
    SET_BUDGET = "AdminService" / "SetBudget" => CONFIG_WRITE;
    LIST_BUDGETS = "AdminService" / "ListBudgets" => READ;
    UPSERT_TEAM = "AdminService" / "UpsertTeam" => CONFIG_WRITE;
    DELETE_TEAM = "AdminService" / "DeleteTeam" => CONFIG_WRITE;
    LIST_TEAMS = "AdminService" / "ListTeams" => READ;
    UPSERT_WEBHOOK = "AdminService" / "UpsertWebhook" => CONFIG_WRITE;
    DELETE_WEBHOOK = "AdminService" / "DeleteWebhook" => CONFIG_WRITE;
    LIST_WEBHOOKS = "AdminService" / "ListWebhooks" => READ;
    APPLY = "AdminService" / "Apply" => CONFIG_WRITE;

    LOGIN = "IdentityService" / "Login" => Rule::Public;
    LOGOUT = "IdentityService" / "Logout" => SELF;
    WHO_AM_I = "IdentityService" / "WhoAmI" => SELF;
    LIST_ROLES = "IdentityService" / "ListRoles" => SELF;
    CREATE_USER = "IdentityService" / "CreateUser" => ADMIN_ONLY;
    LIST_USERS = "IdentityService" / "ListUsers" => READ_OWN;
    UPDATE_USER = "IdentityService" / "UpdateUser" => ADMIN_ONLY;
    RESET_PASSWORD = "IdentityService" / "ResetPassword" => ADMIN_OR_OWN;
    CREATE_API_TOKEN = "IdentityService" / "CreateApiToken" => ADMIN_OR_OWN;
    LIST_API_TOKENS = "IdentityService" / "ListApiTokens" => READ_OWN;
    REVOKE_API_TOKEN = "IdentityService" / "RevokeApiToken" => ADMIN_OR_OWN;
    LIST_AUDIT_LOG = "IdentityService" / "ListAuditLog" => READ;

    LIST_TRACES = "InsightService" / "ListTraces" => READ_OWN;
    GET_TRACE = "InsightService" / "GetTrace" => READ_OWN;
    GET_USAGE = "InsightService" / "GetUsage" => READ_OWN;
    GET_POOL_HEALTH = "InsightService" / "GetPoolHealth" => READ;

    GET_OVERVIEW = "OverviewService" / "GetOverview" => READ_OWN;
    WATCH_OVERVIEW = "OverviewService" / "WatchOverview" => READ_OWN;

    EXPORT_CONFIG = "ConfigFileService" / "ExportConfig" => READ;
    PLAN_CONFIG = "ConfigFileService" / "PlanConfig" => READ;
    APPLY_CONFIG = "ConfigFileService" / "ApplyConfig" => CONFIG_WRITE;

    GET_SIGN_IN_OPTIONS = "SignInService" / "GetSignInOptions" => Rule::Public;
    GET_OIDC_SETTINGS = "SignInService" / "GetOidcSettings" => ADMIN_ONLY;
    SET_OIDC_SETTINGS = "SignInService" / "SetOidcSettings" => ADMIN_ONLY;
    BEGIN_OIDC_LOGIN = "SignInService" / "BeginOidcLogin" => Rule::Public;
    COMPLETE_OIDC_LOGIN = "SignInService" / "CompleteOidcLogin" => Rule::Public;
}

pub fn rule(method: &str) -> Option<Rule> {
    RULES.iter().find(|(m, _)| *m == method).map(|(_, r)| *r)
}

/// How the caller authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrincipalKind {
    /// AIGW_ADMIN_TOKEN, or the token generated at first start.
    Bootstrap,
    Session {
        session_id: String,
        /// When the session ends (0 for the placeholder of a sign-in
        /// still under way). It does not bound the tokens the session
        /// makes (see [`Principal::expires_at_ms`]).
        expires_at_ms: i64,
    },
    ApiToken {
        token_id: String,
        name: String,
        /// 0: never.
        expires_at_ms: i64,
    },
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub role: Role,
    /// The user acting (directly or through their token); None for the
    /// bootstrap token and the tokens it made.
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub kind: PrincipalKind,
}

impl Principal {
    /// The latest expiry an API token made with this credential may have
    /// (0: no bound): a token's own expiry, so a token made from a token
    /// expires no later than its parent. A session's end does not bound
    /// it: what a person creates while logged in is theirs, not the
    /// session's (a member's CI token may last longer than 12 h, and the
    /// bootstrap token cannot make member tokens). What bounds those
    /// instead is that a password change or reset revokes every token of
    /// the user (`users::set_password`), so whoever held the old password,
    /// or a session made with it, keeps nothing it minted.
    pub fn expires_at_ms(&self) -> i64 {
        match self.kind {
            PrincipalKind::ApiToken { expires_at_ms, .. } => expires_at_ms,
            PrincipalKind::Session { .. } | PrincipalKind::Bootstrap => 0,
        }
    }

    pub fn bootstrap() -> Self {
        Self {
            role: Role::Admin,
            user_id: None,
            username: None,
            kind: PrincipalKind::Bootstrap,
        }
    }

    /// Who did it, for the audit log: `user:NAME`, `token:NAME` or
    /// `bootstrap`.
    pub fn actor(&self) -> String {
        match (&self.kind, &self.username) {
            (PrincipalKind::ApiToken { name, .. }, _) => format!("token:{name}"),
            (_, Some(u)) => format!("user:{u}"),
            (PrincipalKind::Session { .. }, None) => "user:?".into(),
            (PrincipalKind::Bootstrap, None) => "bootstrap".into(),
        }
    }
}

/// What a call is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// No particular object: a list (filtered for `own` callers), a new
    /// object (which will be the caller's), or the caller itself.
    None,
    /// An existing object and its owner's user id (None: no user owns it).
    Owned(Option<&'a str>),
}

/// What the caller may see or touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    All,
    /// Only the objects this user owns.
    Own(String),
}

impl Access {
    /// The user id the caller is limited to, if any.
    pub fn owner(&self) -> Option<&str> {
        match self {
            Access::All => None,
            Access::Own(uid) => Some(uid),
        }
    }
}

/// The short form of a method for messages: `AdminService/UpsertProvider`.
pub fn short(method: &str) -> &str {
    method.strip_prefix("/aigw.admin.v1.").unwrap_or(method)
}

/// May `p` call `method` on `target`? The one access check of the Admin API.
pub fn authorize(p: &Principal, method: &str, target: Target<'_>) -> Result<Access, Error> {
    let Some(rule) = rule(method) else {
        return Err(Error::PermissionDenied(format!(
            "{} has no access rule",
            short(method)
        )));
    };
    let (all, own) = match rule {
        Rule::Public => return Ok(Access::All),
        Rule::Roles { all, own } => (all, own),
    };
    if all.contains(&p.role) {
        return Ok(Access::All);
    }
    if !own.contains(&p.role) {
        return Err(Error::PermissionDenied(format!(
            "role {} may not call {}",
            p.role,
            short(method)
        )));
    }
    match (&p.user_id, target) {
        (Some(uid), Target::None) => Ok(Access::Own(uid.clone())),
        (Some(uid), Target::Owned(Some(owner))) if owner == uid => Ok(Access::Own(uid.clone())),
        _ => Err(Error::PermissionDenied(format!(
            "role {} may call {} only on its own objects",
            p.role,
            short(method)
        ))),
    }
}

/// The methods `role` may call, with "all" or "own" scope.
pub fn permissions(role: Role) -> Vec<(&'static str, &'static str)> {
    RULES
        .iter()
        .filter_map(|(m, r)| match r {
            Rule::Public => None,
            Rule::Roles { all, .. } if all.contains(&role) => Some((*m, "all")),
            Rule::Roles { own, .. } if own.contains(&role) => Some((*m, "own")),
            Rule::Roles { .. } => None,
        })
        .collect()
}

pub fn public_methods() -> Vec<&'static str> {
    RULES
        .iter()
        .filter(|(_, r)| *r == Rule::Public)
        .map(|(m, _)| *m)
        .collect()
}

#[cfg(test)]
#[path = "rbac_tests.rs"]
pub(crate) mod tests;
