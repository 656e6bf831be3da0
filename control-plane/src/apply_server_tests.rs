//! `control-plane apply` through ConfigFileService against a real server:
//! idempotence, `--prune`, and the bounds on an apply stream.

use aigw_proto::pb::admin::ListRequest;
use aigw_proto::pb::admin::admin_service_client::AdminServiceClient;
use tonic::Code;
use tonic::transport::Channel;

use crate::admin::apply::ServerRules;
use crate::grpc_tests::*;

/// Applies `text` (with `${VAR}` from `env`) as `control-plane apply`
/// does; returns what it printed.
async fn apply_text(
    client: &mut aigw_apply::Client,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    prune: bool,
) -> String {
    let mut out = Vec::new();
    aigw_apply::apply(
        client,
        aigw_apply::parse(text, env).unwrap(),
        prune,
        &ServerRules,
        &mut out,
    )
    .await
    .unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn apply_twice_changes_nothing_and_prune_deletes() {
    let server = start().await;
    let env = |name: &str| (name == "SECRET_A").then(|| "sk-secret-a-0123456789".to_string());
    let text = r#"
providers:
  - name: mock
    kind: openai-compatible
    base_url: http://127.0.0.1:9
    models: ["gpt-4o*"]
    keys:
      - name: a
        secret: ${SECRET_A}
pricing:
  - model: gpt-4o
    input: 2.5
    output: 10
client_keys:
  - name: app
    models: ["gpt-4o*"]
    limits: { rpm: 60 }
"#;
    let mut client = aigw_apply::connect(&server.url, ADMIN_TOKEN, &Default::default())
        .await
        .unwrap();
    let first = apply_text(&mut client, text, &env, false).await;
    let lines: Vec<&str> = first.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "created provider mock",
            "created price gpt-4o",
            "created client_key app",
            lines[3]
        ]
    );
    assert!(
        lines[3].starts_with("generated key for client_key app: sk-aigw-"),
        "{first}"
    );

    let second = apply_text(&mut client, text, &env, false).await;
    assert_eq!(
        second,
        "unchanged provider mock\nunchanged price gpt-4o\nunchanged client_key app\n"
    );

    let smaller = text.replace(
        "pricing:\n  - model: gpt-4o\n    input: 2.5\n    output: 10\n",
        "",
    );
    let third = apply_text(&mut client, &smaller, &env, true).await;
    assert!(third.contains("deleted price gpt-4o"), "{third}");
    assert!(!third.contains("deleted provider"), "{third}");

    // A refused object is an error naming it (found before anything is sent).
    let bad = "providers:\n  - name: bad\n    kind: openai-compatible\n";
    let e = aigw_apply::apply(
        &mut client,
        aigw_apply::parse(bad, &env).unwrap(),
        false,
        &ServerRules,
        &mut Vec::new(),
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("provider \"bad\"") && e.contains("base_url"),
        "{e}"
    );
    // A wrong token too.
    let mut wrong = aigw_apply::connect(&server.url, "nope", &Default::default())
        .await
        .unwrap();
    let e = aigw_apply::apply(
        &mut wrong,
        aigw_apply::parse(text, &env).unwrap(),
        false,
        &ServerRules,
        &mut Vec::new(),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("invalid token"), "{e}");
    server.stop().await;
}

/// Sends `msgs` to Apply as the bootstrap admin; the status it ends with.
async fn apply_raw(
    ch: Channel,
    msgs: Vec<aigw_proto::pb::admin::ApplyRequest>,
) -> Result<Vec<aigw_proto::pb::admin::ApplyOutcome>, tonic::Status> {
    let mut admin = AdminServiceClient::new(ch);
    let mut answer = admin
        .apply(with_token(tokio_stream::iter(msgs), ADMIN_TOKEN))
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(p) = answer.message().await? {
        out.extend(p.outcomes);
    }
    Ok(out)
}

#[tokio::test]
async fn apply_streams_are_bounded_before_anything_changes() {
    use aigw_proto::pb::admin::apply_request::Part;
    use aigw_proto::pb::admin::{
        ApplyHeader, ApplyRequest, ClientKeyBatch, ClientKeySpec, PriceSpec,
    };
    let server = start().await;
    let ch = server.channel().await;
    let header = |count: u32| ApplyRequest {
        part: Some(Part::Header(ApplyHeader {
            client_key_count: count,
            ..Default::default()
        })),
    };
    let batch = |from: usize, n: usize| ApplyRequest {
        part: Some(Part::ClientKeys(ClientKeyBatch {
            keys: (from..from + n)
                .map(|i| ClientKeySpec {
                    name: format!("k{i}"),
                    ..Default::default()
                })
                .collect(),
        })),
    };
    let cases = [
        (vec![batch(0, 1)], "first message must be the header"),
        (vec![header(1), header(1)], "only the first message"),
        (vec![header(2001), batch(0, 2001)], "at most 2000"),
        (vec![header(1), batch(0, 2)], "more client keys than the 1"),
        (vec![header(3), batch(0, 2)], "after 2 of the 3"),
        (vec![header(250_001)], "at most 250000"),
        (vec![], "before its header"),
    ];
    // A price whose cost would overflow (checked by the server itself, not
    // only by the `apply` client).
    let overpriced = ApplyRequest {
        part: Some(Part::Header(ApplyHeader {
            pricing: vec![PriceSpec {
                model: "gpt-4o".into(),
                input: 2.5,
                output: 1e308,
                cached_input: None,
            }],
            ..Default::default()
        })),
    };
    let cases = cases.into_iter().chain([(
        vec![overpriced],
        "price \"gpt-4o\": output must be at most 1000000",
    )]);
    for (msgs, why) in cases {
        let e = apply_raw(ch.clone(), msgs).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{why}: {e:?}");
        assert!(e.message().contains(why), "{:?} lacks {why:?}", e.message());
    }
    let db = server.db();
    let keys = db
        .run(|c| crate::db::config::list_client_keys(c, None))
        .await;
    assert!(keys.unwrap().is_empty());
    let prices = db.run(crate::db::config::list_pricing).await;
    assert!(prices.unwrap().is_empty());
    // Within the bounds: 2,001 keys in two batches, one version.
    let done = apply_raw(
        ch.clone(),
        vec![header(2001), batch(0, 2000), batch(2000, 1)],
    )
    .await
    .unwrap();
    assert_eq!(done.len(), 2001);
    assert!(
        done.iter()
            .all(|o| o.action == "created" && !o.generated_key.is_empty())
    );
    server.stop().await;
}

#[tokio::test]
async fn apply_handles_routes_and_model_maps() {
    let server = start().await;
    let env = |_: &str| None;
    let text = r#"
providers:
  - name: primary
    kind: openai-compatible
    base_url: http://127.0.0.1:9
    models: ["gpt-4o*"]
    model_map: { fast: gpt-4o-mini }
    keys: [{ name: a, secret: sk-primary-0123456789 }]
  - name: backup
    kind: openai-compatible
    base_url: http://127.0.0.1:10
    models: ["gpt-4o*"]
    keys: [{ name: b, secret: sk-backup-0123456789 }]
routes:
  - model: gpt-4o*
    providers: [primary, backup]
"#;
    let mut client = aigw_apply::connect(&server.url, ADMIN_TOKEN, &Default::default())
        .await
        .unwrap();
    let first = apply_text(&mut client, text, &env, false).await;
    assert_eq!(
        first,
        "created provider primary\ncreated provider backup\ncreated route gpt-4o*\n"
    );
    let second = apply_text(&mut client, text, &env, false).await;
    assert_eq!(
        second,
        "unchanged provider primary\nunchanged provider backup\nunchanged route gpt-4o*\n"
    );
    let mut admin = AdminServiceClient::new(server.channel().await);
    let providers = admin
        .list_providers(with_token(ListRequest {}, ADMIN_TOKEN))
        .await
        .unwrap()
        .into_inner();
    let primary = providers
        .providers
        .iter()
        .find(|p| p.name == "primary")
        .unwrap();
    assert_eq!(primary.model_map["fast"], "gpt-4o-mini");

    // Pruning deletes the route before the provider it names.
    let only_primary = text.split("  - name: backup").next().unwrap().to_string();
    let third = apply_text(&mut client, &only_primary, &env, true).await;
    assert!(
        third.contains("deleted route gpt-4o*\ndeleted provider backup"),
        "{third}"
    );
    server.stop().await;
}
