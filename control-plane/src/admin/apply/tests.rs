//! Apply called directly (no network), on SQLite and, when a cluster is
//! given, Postgres: one transaction and one version for thousands of keys,
//! idempotence, prune, and refusals that change nothing.

use aigw_proto::pb::admin::admin_service_server::AdminService;
use aigw_proto::pb::admin::{
    ApplyHeader, ClientKeySpec, ListRequest, PriceSpec, ProviderKeySpec, ProviderSpec, RouteSpec,
};

use super::*;
use crate::admin::testkit::{TOKEN, req, req_as, svc_on, user};
use crate::admin::{AdminSvc, authn};
use crate::db::Db;
use crate::db::identity::{AuditFilter, list_audit};
use crate::db::testing::{pg_db, temp_db};

fn provider() -> ProviderSpec {
    ProviderSpec {
        name: "mock".into(),
        kind: "openai-compatible".into(),
        base_url: "http://127.0.0.1:9".into(),
        models: vec!["gpt-4o*".into()],
        keys: vec![ProviderKeySpec {
            name: "pool".into(),
            secret: "sk-pool-0123456789".into(),
            weight: 1,
            ..Default::default()
        }],
        health_check_interval_secs: Some(0),
        ..Default::default()
    }
}

fn key(i: usize) -> ClientKeySpec {
    ClientKeySpec {
        name: format!("app-{i:05}"),
        // Every tenth key is generated.
        key: if i.is_multiple_of(10) {
            String::new()
        } else {
            format!("sk-aigw-bulk-{i:08}")
        },
        rpm: i.is_multiple_of(3).then_some(60),
        ..Default::default()
    }
}

fn config(keys: Vec<ClientKeySpec>, prune: bool) -> Received {
    Received {
        header: ApplyHeader {
            providers: vec![provider()],
            pricing: vec![PriceSpec {
                model: "gpt-4o".into(),
                input: 2.5,
                output: 10.0,
                cached_input: None,
            }],
            routes: vec![RouteSpec {
                model: "gpt-4o*".into(),
                providers: vec!["mock".into()],
                ..Default::default()
            }],
            prune,
            client_key_count: keys.len() as u32,
            ..Default::default()
        },
        keys,
    }
}

/// The caller a token authenticates as.
async fn principal(s: &AdminSvc, token: &str) -> Principal {
    let r = req_as((), token);
    authn::authenticate(&s.db, &s.bootstrap_tokens, r.metadata())
        .await
        .unwrap()
}

async fn bootstrap(s: &AdminSvc) -> Principal {
    principal(s, TOKEN).await
}

fn lines(chunks: &[ApplyProgress]) -> Vec<String> {
    chunks
        .iter()
        .flat_map(|c| &c.outcomes)
        .map(|o| format!("{} {} {}", o.action, o.kind, o.name))
        .collect()
}

async fn audit_count(s: &AdminSvc) -> usize {
    s.read(|c| {
        list_audit(
            c,
            &AuditFilter {
                limit: 1_000_000,
                ..Default::default()
            },
        )
    })
    .await
    .unwrap()
    .len()
}

/// `N` keys: one transaction, one version; then idempotence, one key
/// changed, one pruned, one created. A small file takes the path that
/// decides key by key (`keys::ONE_BY_ONE`), a large one the bulk path:
/// both must decide alike.
async fn bulk_apply_is_one_transaction_and_one_version<const N: usize>(db: Db) {
    let s = svc_on(db);
    let p = bootstrap(&s).await;
    let (v0, published) = (s.publisher.current(), s.publisher.published());

    let first = s
        .apply_config(&p, config((0..N).map(key).collect(), false))
        .await
        .unwrap();
    let got = lines(&first);
    assert_eq!(got.len(), N + 3);
    assert_eq!(got[0], "created provider mock");
    assert_eq!(got[1], "created price gpt-4o");
    assert_eq!(got[2], "created client_key app-00000");
    assert_eq!(got[N + 2], "created route gpt-4o*");
    let generated: Vec<&ApplyOutcome> = first
        .iter()
        .flat_map(|c| &c.outcomes)
        .filter(|o| !o.generated_key.is_empty())
        .collect();
    assert_eq!(generated.len(), N / 10);
    assert!(generated[0].generated_key.starts_with("sk-aigw-"));
    // One new version, with every key, and one audit entry per object.
    assert_eq!(s.publisher.published(), published + 1);
    let v1 = s.publisher.current();
    assert_ne!(v1.version(), v0.version());
    assert_eq!(v1.keys.len(), N);
    assert_eq!(
        v1.keys[1].key_hash,
        crate::crypto::sha256("sk-aigw-bulk-00000001").to_vec()
    );
    assert_eq!(v1.keys[3].limits.as_ref().unwrap().rpm, Some(60));
    assert_eq!(audit_count(&s).await, N + 3);

    // The same again: nothing changes, nothing is published or audited.
    let again = s
        .apply_config(&p, config((0..N).map(key).collect(), false))
        .await
        .unwrap();
    let again_lines = lines(&again);
    assert_eq!(again_lines.len(), N + 3);
    assert!(again_lines.iter().all(|l| l.starts_with("unchanged ")));
    assert!(
        again
            .iter()
            .flat_map(|c| &c.outcomes)
            .all(|o| o.generated_key.is_empty())
    );
    assert_eq!(s.publisher.published(), published + 1);
    assert_eq!(audit_count(&s).await, N + 3);

    // One key changed, one gone (pruned), one new; a new key's hash may be
    // one a changed key gives up in the same apply.
    let mut keys: Vec<ClientKeySpec> = (0..N).filter(|&i| i != 7).map(key).collect();
    keys[4].rpm = Some(1);
    keys[5].key = "sk-aigw-bulk-rotated".into();
    let mut taker = key(N);
    taker.key = key(5).key;
    keys.push(taker);
    let third = s.apply_config(&p, config(keys, true)).await.unwrap();
    let changed: Vec<String> = lines(&third)
        .into_iter()
        .filter(|l| !l.starts_with("unchanged "))
        .collect();
    assert_eq!(
        changed,
        [
            "updated client_key app-00004",
            "updated client_key app-00005",
            &format!("created client_key app-{N:05}"),
            "deleted client_key app-00007",
        ]
    );
    assert_eq!(s.publisher.published(), published + 2);
    assert_eq!(s.publisher.current().keys.len(), N);
    // Only those four keys were compiled again; the rest is as it was.
    let master = s.master.clone();
    let full = s
        .read(move |c| crate::compile::compile(&crate::db::config::load_all(c)?, &master, None))
        .await
        .unwrap();
    assert_eq!(s.publisher.current().to_pb(), full.to_pb());
    assert_eq!(audit_count(&s).await, N + 3 + 4);
}

#[tokio::test]
async fn bulk_apply_sqlite() {
    let t = temp_db();
    bulk_apply_is_one_transaction_and_one_version::<5_000>(t.db.clone()).await;
}

#[tokio::test]
async fn small_apply_sqlite() {
    let t = temp_db();
    bulk_apply_is_one_transaction_and_one_version::<20>(t.db.clone()).await;
}

#[tokio::test]
async fn bulk_apply_postgres() {
    let Some(pg) = pg_db() else { return };
    bulk_apply_is_one_transaction_and_one_version::<5_000>(pg.db.clone()).await;
}

/// With `n` keys applied, files of about as many that are refused.
async fn a_refusal_anywhere_changes_nothing(n: usize) {
    let t = temp_db();
    let s = svc_on(t.db.clone());
    let p = bootstrap(&s).await;
    s.apply_config(&p, config((0..n).map(key).collect(), false))
        .await
        .unwrap();
    let (published, audited) = (s.publisher.published(), audit_count(&s).await);
    let version = s.publisher.current().version().to_string();

    // A key taken by another name, a route to nowhere, a name twice, a bad
    // key: each refused with its reason, nothing written.
    let mut taken = key(n + 90);
    taken.key = key(3).key;
    let mut taking: Vec<ClientKeySpec> = (0..n + 2).map(key).collect();
    taking.push(taken);
    let mut ghost = config((0..n + 2).map(key).collect(), false);
    ghost.header.routes[0].providers = vec!["ghost".into()];
    let mut twice: Vec<ClientKeySpec> = (0..n + 2).map(key).collect();
    twice.push(key(n + 1));
    let mut short = key(n + 1);
    short.key = "short".into();
    let cases = [
        (config(taking, false), "already used"),
        (ghost, "ghost"),
        (config(twice, false), "listed twice"),
        (config(vec![short], false), "key must be"),
    ];
    for (received, why) in cases {
        let e = s.apply_config(&p, received).await.unwrap_err();
        assert!(e.to_string().contains(why), "{e} lacks {why:?}");
    }
    assert_eq!(s.publisher.published(), published);
    assert_eq!(s.publisher.current().version(), version);
    assert_eq!(audit_count(&s).await, audited);
    let listed = s
        .list_client_keys(req(ListRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.client_keys.len(), n);

    // A revoked key cannot be applied again; it stays revoked.
    s.revoke_client_key(req(aigw_proto::pb::admin::NameRequest {
        name: "app-00001".into(),
    }))
    .await
    .unwrap();
    let e = s
        .apply_config(&p, config((0..n).map(key).collect(), false))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("revoked"), "{e}");
}

#[tokio::test]
async fn a_refusal_anywhere_changes_nothing_small() {
    a_refusal_anywhere_changes_nothing(10).await;
}

#[tokio::test]
async fn a_refusal_anywhere_changes_nothing_large() {
    a_refusal_anywhere_changes_nothing(keys::ONE_BY_ONE + 10).await;
}

#[tokio::test]
async fn apply_keys_belong_to_the_file_and_members_may_not_apply() {
    let t = temp_db();
    let s = svc_on(t.db.clone());
    let op = user(&s, "olga", "operator").await;
    let member = user(&s, "mia", "member").await;
    let as_op = principal(&s, &op).await;
    s.apply_config(&as_op, config((0..3).map(key).collect(), false))
        .await
        .unwrap();
    let listed = s
        .list_client_keys(req(ListRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.client_keys.len(), 3, "{listed:?}");
    assert!(listed.client_keys.iter().all(|k| k.owner.is_empty()));

    let as_member = principal(&s, &member).await;
    let e = s
        .apply_config(&as_member, config(vec![key(9)], false))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::PermissionDenied(_)), "{e}");
}

#[tokio::test]
async fn oauth_templates_come_before_the_keys_naming_them_and_prune_removes_stored_ones() {
    use aigw_proto::pb::admin::OAuthTemplateSpec;
    let t = temp_db();
    let s = svc_on(t.db.clone());
    let p = bootstrap(&s).await;
    let template = |name: &str| OAuthTemplateSpec {
        name: name.into(),
        authorize_url: "https://id.test/authorize".into(),
        token_url: "https://id.test/token".into(),
        client_id: "cid".into(),
        client_secret: "client-shh-123".into(),
        redirect_uri: "http://localhost:1455/cb".into(),
        ..Default::default()
    };
    let with = |templates: Vec<OAuthTemplateSpec>, prune: bool| {
        let mut c = config(vec![key(1)], prune);
        c.header.oauth_templates = templates;
        c.header.providers[0].keys.push(ProviderKeySpec {
            name: "acct".into(),
            oauth_template: "idp".into(),
            ..Default::default()
        });
        c
    };
    let first = s
        .apply_config(&p, with(vec![template("idp"), template("spare")], false))
        .await
        .unwrap();
    assert_eq!(
        lines(&first)[..3],
        [
            "created oauth_template idp",
            "created oauth_template spare",
            "created provider mock",
        ]
    );
    // The secret is sealed, never listed.
    let listed = s
        .list_o_auth_templates(req(ListRequest {}))
        .await
        .unwrap()
        .into_inner();
    let idp = listed.templates.iter().find(|t| t.name == "idp").unwrap();
    assert!(idp.has_client_secret && idp.client_secret.is_empty());

    // Pruned: the template the file no longer names goes, built-in ones stay.
    let second = s
        .apply_config(&p, with(vec![template("idp")], true))
        .await
        .unwrap();
    let changed: Vec<String> = lines(&second)
        .into_iter()
        .filter(|l| !l.starts_with("unchanged "))
        .collect();
    assert_eq!(changed, ["deleted oauth_template spare"]);
    let listed = s
        .list_o_auth_templates(req(ListRequest {}))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.templates.iter().any(|t| t.name == "idp"));
    assert!(!listed.templates.iter().any(|t| t.name == "spare"));
    assert!(listed.templates.iter().any(|t| t.builtin));

    // A template a key still uses is not pruned: the apply is refused whole.
    let e = s
        .apply_config(&p, with(Vec::new(), true))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("used by keys acct"), "{e}");
}
