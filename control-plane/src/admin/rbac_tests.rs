//! The RBAC matrix, generated from the RPCs in the compiled descriptor set:
//! an RPC without a rule, or without a line in the expected table below,
//! fails. The table is written by hand, independently of `RULES`: for each
//! role, three cases — the caller's own object, someone else's, no object.

use std::collections::BTreeSet;

use prost::Message as _;

use super::*;

/// `method  admin operator viewer member`, each role as own/other/none with
/// `y` allowed and `-` refused.
const EXPECTED: &str = "
AdminService/UpsertProvider      yyy yyy --- ---
AdminService/DeleteProvider      yyy yyy --- ---
AdminService/ListProviders       yyy yyy yyy ---
AdminService/UpsertPrice         yyy yyy --- ---
AdminService/DeletePrice         yyy yyy --- ---
AdminService/ListPricing         yyy yyy yyy ---
AdminService/UpsertClientKey     yyy yyy --- y-y
AdminService/DeleteClientKey     yyy yyy --- y-y
AdminService/ListClientKeys      yyy yyy yyy y-y
AdminService/RevokeClientKey     yyy yyy --- y-y
AdminService/UpsertRoute         yyy yyy --- ---
AdminService/DeleteRoute         yyy yyy --- ---
AdminService/ListRoutes          yyy yyy yyy ---
AdminService/ListNodes           yyy yyy yyy ---
AdminService/CreateNodeCredential yyy --- --- ---
AdminService/ListNodeCredentials yyy yyy yyy ---
AdminService/RevokeNodeCredential yyy --- --- ---
AdminService/DeleteNodeCredential yyy --- --- ---
AdminService/CheckCredential     yyy yyy --- ---
AdminService/ListCredentialHealth yyy yyy yyy ---
AdminService/UpsertOAuthTemplate yyy yyy --- ---
AdminService/DeleteOAuthTemplate yyy yyy --- ---
AdminService/ListOAuthTemplates  yyy yyy yyy ---
AdminService/StartOAuthConnect   yyy yyy --- ---
AdminService/CompleteOAuthConnect yyy yyy --- ---
AdminService/StartOAuthDevice    yyy yyy --- ---
AdminService/PollOAuthDevice     yyy yyy --- ---
AdminService/RefreshOAuthAccount yyy yyy --- ---
AdminService/ListOAuthAccounts   yyy yyy yyy ---
AdminService/SetBudget           yyy yyy --- ---
AdminService/ListBudgets         yyy yyy yyy ---
AdminService/UpsertTeam          yyy yyy --- ---
AdminService/DeleteTeam          yyy yyy --- ---
AdminService/ListTeams           yyy yyy yyy ---
AdminService/UpsertWebhook       yyy yyy --- ---
AdminService/DeleteWebhook       yyy yyy --- ---
AdminService/ListWebhooks        yyy yyy yyy ---
AdminService/Apply               yyy yyy --- ---
IdentityService/Login            yyy yyy yyy yyy
IdentityService/Logout           yyy yyy yyy yyy
IdentityService/WhoAmI           yyy yyy yyy yyy
IdentityService/ListRoles        yyy yyy yyy yyy
IdentityService/CreateUser       yyy --- --- ---
IdentityService/ListUsers        yyy yyy yyy y-y
IdentityService/UpdateUser       yyy --- --- ---
IdentityService/ResetPassword    yyy y-y y-y y-y
IdentityService/CreateApiToken   yyy y-y y-y y-y
IdentityService/ListApiTokens    yyy yyy yyy y-y
IdentityService/RevokeApiToken   yyy y-y y-y y-y
IdentityService/ListAuditLog     yyy yyy yyy ---
InsightService/ListTraces        yyy yyy yyy y-y
InsightService/GetTrace          yyy yyy yyy y-y
InsightService/GetUsage          yyy yyy yyy y-y
InsightService/GetPoolHealth     yyy yyy yyy ---
OverviewService/GetOverview      yyy yyy yyy y-y
OverviewService/WatchOverview    yyy yyy yyy y-y
ConfigFileService/ExportConfig   yyy yyy yyy ---
ConfigFileService/PlanConfig     yyy yyy yyy ---
ConfigFileService/ApplyConfig    yyy yyy --- ---
SignInService/GetSignInOptions   yyy yyy yyy yyy
SignInService/GetOidcSettings    yyy --- --- ---
SignInService/SetOidcSettings    yyy --- --- ---
SignInService/BeginOidcLogin     yyy yyy yyy yyy
SignInService/CompleteOidcLogin  yyy yyy yyy yyy
";

pub(crate) const ROLE_ORDER: [Role; 4] = [Role::Admin, Role::Operator, Role::Viewer, Role::Member];

/// Full method names of every RPC in our Admin API services, from the
/// descriptor set the server is built from (and serves over reflection).
pub(crate) fn admin_methods() -> Vec<String> {
    let fds = prost_types::FileDescriptorSet::decode(aigw_proto::FILE_DESCRIPTOR_SET).unwrap();
    let mut out = Vec::new();
    for file in fds.file {
        if file.package() != "aigw.admin.v1" {
            continue;
        }
        for svc in &file.service {
            for m in &svc.method {
                out.push(format!("/aigw.admin.v1.{}/{}", svc.name(), m.name()));
            }
        }
    }
    assert!(out.len() >= 20, "too few admin methods found: {out:?}");
    out
}

/// (method, cells[role in ROLE_ORDER][own, other, none]).
pub(crate) fn expected() -> Vec<(String, [[bool; 3]; 4])> {
    EXPECTED
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(cols.len(), 5, "bad line {line:?}");
            let mut cells = [[false; 3]; 4];
            for (r, col) in cols[1..].iter().enumerate() {
                let b = col.as_bytes();
                assert_eq!(b.len(), 3, "bad cell {col:?} in {line:?}");
                for c in 0..3 {
                    cells[r][c] = b[c] == b'y';
                }
            }
            (format!("/aigw.admin.v1.{}", cols[0]), cells)
        })
        .collect()
}

fn user(role: Role) -> Principal {
    Principal {
        role,
        user_id: Some(format!("uid-{role}")),
        username: Some(format!("{role}-user")),
        kind: PrincipalKind::Session {
            session_id: "s".into(),
            expires_at_ms: 0,
        },
    }
}

#[test]
fn every_rpc_has_a_rule_and_an_expected_line() {
    let methods = admin_methods();
    let expected: BTreeSet<String> = expected().into_iter().map(|(m, _)| m).collect();
    for m in &methods {
        assert!(rule(m).is_some(), "{m} has no rule in RULES");
        assert!(expected.contains(m), "{m} has no line in EXPECTED");
    }
    let served: BTreeSet<&str> = methods.iter().map(String::as_str).collect();
    for (m, _) in RULES {
        assert!(served.contains(m), "rule for {m}, which no service has");
    }
    for m in &expected {
        assert!(
            served.contains(m.as_str()),
            "EXPECTED names {m}, which no service has"
        );
    }
    assert_eq!(RULES.len(), methods.len(), "a method has two rules");
}

#[test]
fn matrix_role_by_rpc_by_owner() {
    let mut checked = 0;
    for (method, cells) in expected() {
        for (r, role) in ROLE_ORDER.into_iter().enumerate() {
            let p = user(role);
            let own = p.user_id.clone().unwrap();
            let cases = [
                ("own object", Target::Owned(Some(own.as_str()))),
                (
                    "someone else's object",
                    Target::Owned(Some("uid-someone-else")),
                ),
                ("no object", Target::None),
            ];
            for (c, (what, target)) in cases.into_iter().enumerate() {
                let got = authorize(&p, &method, target);
                assert_eq!(
                    got.is_ok(),
                    cells[r][c],
                    "{role} × {method} × {what}: got {got:?}"
                );
                if let Err(e) = got {
                    assert!(
                        matches!(e, Error::PermissionDenied(_)),
                        "refusals are PermissionDenied: {e:?}"
                    );
                }
                checked += 1;
            }
            // An object no user owns (made by `apply`) is "someone else's".
            assert_eq!(
                authorize(&p, &method, Target::Owned(None)).is_ok(),
                cells[r][1],
                "{role} × {method} × unowned object"
            );
        }
        // The bootstrap token is a full admin without a user.
        assert!(authorize(&Principal::bootstrap(), &method, Target::Owned(Some("x"))).is_ok());
        assert!(authorize(&Principal::bootstrap(), &method, Target::None).is_ok());
    }
    assert_eq!(checked, RULES.len() * 4 * 3);
}

#[test]
fn own_scope_carries_the_callers_user_and_needs_one() {
    let m = user(Role::Member);
    assert_eq!(
        authorize(&m, LIST_CLIENT_KEYS, Target::None).unwrap(),
        Access::Own("uid-member".into())
    );
    assert_eq!(
        authorize(&user(Role::Viewer), LIST_CLIENT_KEYS, Target::None).unwrap(),
        Access::All
    );
    // A member-role token no user owns owns nothing.
    let orphan = Principal {
        user_id: None,
        username: None,
        ..m
    };
    assert!(authorize(&orphan, LIST_CLIENT_KEYS, Target::None).is_err());
    // Unknown methods are refused.
    let e = authorize(
        &user(Role::Admin),
        "/aigw.admin.v1.AdminService/Nope",
        Target::None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("no access rule"), "{e}");
}

#[test]
fn roles_include_only_what_they_hold() {
    use Role::*;
    let table = [
        (Admin, [true, true, true, true]),
        (Operator, [false, true, true, true]),
        (Viewer, [false, false, true, false]),
        (Member, [false, false, false, true]),
    ];
    for (r, row) in table {
        for (i, other) in ROLE_ORDER.into_iter().enumerate() {
            assert_eq!(r.includes(other), row[i], "{r} includes {other}");
            // Including a role means holding each of its permissions.
            if r.includes(other) {
                for (m, scope) in permissions(other) {
                    let mine = permissions(r);
                    assert!(
                        mine.iter()
                            .any(|(mm, s)| *mm == m && (*s == "all" || *s == scope)),
                        "{r} includes {other} but lacks {m} ({scope})"
                    );
                }
            }
        }
        assert_eq!(Role::parse(r.as_str()).unwrap(), r);
    }
    assert!(Role::parse("root").is_err());
}
