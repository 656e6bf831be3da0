//! ConfigFileService: configuration as code for the admin UI. Export, plan
//! and apply all talk to AdminService in process, with the caller's own
//! token: the listings are the ones the caller may read, and apply runs
//! `aigw_apply::apply` (the code of `control-plane apply`), so every change is
//! authorized, validated, audited and published exactly as if the caller
//! had sent it.

use aigw_proto::pb::admin::admin_service_client::AdminServiceClient;
use aigw_proto::pb::admin::admin_service_server::AdminServiceServer;
use aigw_proto::pb::admin::config_file_service_server::ConfigFileService;
use aigw_proto::pb::admin::{
    ConfigApplyResult, ConfigFile, ConfigFileRequest, ConfigPlan, ExportConfigRequest,
};
use tonic::service::interceptor::InterceptedService;
use tonic::{Request, Response, Status};

use aigw_apply::file::format_rfc3339_ms;
use aigw_apply::{ApplyFile, Bearer, export, plan};

use super::apply::ServerRules;
use super::{AdminSvc, rbac};
use crate::db::now_ms;
use crate::error::{Error, Result};
use crate::server::MAX_MESSAGE;

/// Largest file accepted (admin-web bounds its bodies by the same number).
pub const MAX_FILE_BYTES: usize = aigw_proto::MAX_CONFIG_FILE_BYTES;

/// AdminService in process as the caller: it takes the messages the
/// server takes from the network (a big file's header), and its answers
/// (the listings `plan` compares with, 100,000 client keys and more) are
/// read whole: they come from this process, not from a stranger.
fn in_process(
    auth: tonic::metadata::MetadataValue<tonic::metadata::Ascii>,
    admin: AdminSvc,
) -> InProcess {
    let server = AdminServiceServer::new(admin).max_decoding_message_size(MAX_MESSAGE);
    AdminServiceClient::new(InterceptedService::new(server, Bearer::from_header(auth)))
        .max_decoding_message_size(usize::MAX)
}

#[derive(Clone)]
pub struct ConfigFileSvc {
    pub admin: AdminSvc,
}

/// Parses a file sent from the UI. `${VAR}` is refused: the control plane's
/// environment holds its own secrets and must never reach a configuration.
pub fn parse_file(text: &str) -> Result<ApplyFile> {
    if text.len() > MAX_FILE_BYTES {
        return Err(Error::invalid(format!(
            "the file is larger than {MAX_FILE_BYTES} bytes"
        )));
    }
    aigw_apply::parse(text, &|_| None).map_err(|e| match e {
        aigw_apply::Error::MissingVar { var, path } => Error::invalid(format!(
            "{path}: ${{{var}}}: variables cannot be used in a file applied from the admin UI; \
             write the value, or leave a provider key's secret out to keep the stored one"
        )),
        other => other.into(),
    })
}

/// [`parse_file`] on a blocking thread: parsing a large file takes a while,
/// and must not hold up the runtime's workers (other admin calls, the data
/// planes' streams) meanwhile.
pub async fn parse_file_blocking(text: String) -> Result<ApplyFile> {
    blocking(move || parse_file(&text)).await?
}

/// Runs CPU-heavy work (parsing, planning) off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::internal(format!("config file task: {e}")))
}

type InProcess = AdminServiceClient<InterceptedService<AdminServiceServer<AdminSvc>, Bearer>>;

impl ConfigFileSvc {
    /// AdminService in process, called as the caller of `request`.
    fn as_caller<T>(&self, request: &Request<T>) -> Result<InProcess> {
        let auth =
            request
                .metadata()
                .get("authorization")
                .cloned()
                .ok_or(Error::Unauthenticated(
                    "missing authorization: Bearer token",
                ))?;
        Ok(in_process(auth, self.admin.clone()))
    }
}

#[tonic::async_trait]
impl ConfigFileService for ConfigFileSvc {
    async fn export_config(
        &self,
        request: Request<ExportConfigRequest>,
    ) -> Result<Response<ConfigFile>, Status> {
        self.admin.caller(&request, rbac::EXPORT_CONFIG).await?;
        let live = export::load(&mut self.as_caller(&request)?)
            .await
            .map_err(Error::from)?;
        let at = format_rfc3339_ms(now_ms());
        let yaml = blocking(move || export::to_yaml(&live, &at))
            .await?
            .map_err(Error::from)?;
        Ok(Response::new(ConfigFile { yaml }))
    }

    async fn plan_config(
        &self,
        request: Request<ConfigFileRequest>,
    ) -> Result<Response<ConfigPlan>, Status> {
        self.admin.caller(&request, rbac::PLAN_CONFIG).await?;
        let mut client = self.as_caller(&request)?;
        let req = request.into_inner();
        let prune = req.prune;
        // What applying would refuse, the plan refuses (with the same
        // words): a plan of a file that cannot apply would mislead.
        let checked = parse_file_blocking(req.yaml.clone()).await?;
        blocking(move || aigw_apply::client::request(checked, prune, &ServerRules))
            .await?
            .map_err(Error::from)?;
        let doc = parse_file_blocking(req.yaml).await?;
        let live = export::load(&mut client).await.map_err(Error::from)?;
        let changes = blocking(move || plan::plan(&doc, &live, prune, &ServerRules)).await?;
        Ok(Response::new(ConfigPlan { changes }))
    }

    async fn apply_config(
        &self,
        request: Request<ConfigFileRequest>,
    ) -> Result<Response<ConfigApplyResult>, Status> {
        self.admin.caller(&request, rbac::APPLY_CONFIG).await?;
        let auth =
            request
                .metadata()
                .get("authorization")
                .cloned()
                .ok_or(Error::Unauthenticated(
                    "missing authorization: Bearer token",
                ))?;
        let req = request.into_inner();
        let doc = parse_file_blocking(req.yaml).await?;
        let mut client = in_process(auth, self.admin.clone());
        let mut out = Vec::new();
        let result = aigw_apply::apply(&mut client, doc, req.prune, &ServerRules, &mut out).await;
        let lines: Vec<String> = String::from_utf8_lossy(&out)
            .lines()
            .map(str::to_string)
            .collect();
        match result {
            Ok(()) => Ok(Response::new(ConfigApplyResult { lines })),
            Err(e) => {
                let status = Status::from(Error::from(e));
                let done = if lines.is_empty() {
                    String::new()
                } else {
                    format!(" (done before the error: {})", lines.join("; "))
                };
                Err(Status::new(
                    status.code(),
                    format!("{}{done}", status.message()),
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use aigw_proto::pb::admin::admin_service_server::AdminService;
    use aigw_proto::pb::admin::identity_service_server::IdentityService;
    use aigw_proto::pb::admin::{AuditQuery, ListRequest};
    use tonic::Code;

    use super::*;
    use crate::admin::testkit::{TOKEN, req, req_as, svc, user};
    use crate::db::testing::temp_db;

    const FILE: &str = "providers:
  - name: mock
    kind: openai-compatible
    base_url: http://127.0.0.1:9
    models: [\"gpt-*\"]
    keys:
      - name: a
        secret: sk-upstream-secret-1
pricing:
  - model: gpt-4o
    input: 2.5
    output: 10
client_keys:
  - name: app
";

    fn file(yaml: &str, prune: bool) -> ConfigFileRequest {
        ConfigFileRequest {
            yaml: yaml.into(),
            prune,
        }
    }

    #[tokio::test]
    async fn plan_apply_export_roundtrip_as_the_caller() {
        let t = temp_db();
        let s = ConfigFileSvc { admin: svc(&t) };
        let op = user(&s.admin, "olga", "operator").await;
        let viewer = user(&s.admin, "vic", "viewer").await;

        let p = s
            .plan_config(req_as(file(FILE, false), &viewer))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(p.changes.len(), 3);
        assert!(p.changes.iter().all(|c| c.action == "create"));
        // A viewer may look but not apply.
        let e = s
            .apply_config(req_as(file(FILE, false), &viewer))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::PermissionDenied);

        let r = s
            .apply_config(req_as(file(FILE, false), &op))
            .await
            .unwrap()
            .into_inner();
        assert!(
            r.lines.contains(&"created provider mock".to_string()),
            "{r:?}"
        );
        assert!(
            r.lines
                .iter()
                .any(|l| l.starts_with("generated key for client_key app: sk-aigw-")),
            "{r:?}"
        );
        // Audited as the operator, through AdminService.
        let audit = s
            .admin
            .list_audit_log(req(AuditQuery::default()))
            .await
            .unwrap()
            .into_inner();
        assert!(
            audit
                .entries
                .iter()
                .any(|e| e.actor == "user:olga" && e.object_kind == "provider"),
            "{audit:?}"
        );
        // A key an apply file creates belongs to the configuration, not to
        // whoever applied it (as with `control-plane apply`): no owner, so
        // `--prune` manages it.
        let keys = s
            .admin
            .list_client_keys(req(ListRequest {}))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(keys.client_keys[0].owner, "");

        // The export leaves secrets out, and applying it changes nothing.
        let yaml = s
            .export_config(req_as(ExportConfigRequest {}, &viewer))
            .await
            .unwrap()
            .into_inner()
            .yaml;
        assert!(!yaml.contains("sk-upstream"), "{yaml}");
        let again = s
            .plan_config(req_as(file(&yaml, true), &op))
            .await
            .unwrap()
            .into_inner();
        let changes: Vec<(&str, &str, &str)> = again
            .changes
            .iter()
            .map(|c| (c.kind.as_str(), c.name.as_str(), c.action.as_str()))
            .collect();
        assert_eq!(
            changes,
            [
                ("provider", "mock", "unchanged"),
                ("price", "gpt-4o", "unchanged"),
                ("client_key", "app", "unchanged"),
            ],
            "{again:?}"
        );
        let r = s
            .apply_config(req_as(file(&yaml, true), &op))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            r.lines,
            [
                "unchanged provider mock",
                "unchanged price gpt-4o",
                "unchanged client_key app",
            ],
            "{r:?}"
        );
    }

    /// A file of about 5 MB (far over the 1 MiB this service once took, and
    /// over tonic's 4 MiB default for a message) plans, applies, and plans
    /// again once the listing it compares with is as large.
    #[tokio::test]
    async fn a_file_of_several_megabytes_plans_and_applies() {
        let t = temp_db();
        let s = ConfigFileSvc { admin: svc(&t) };
        let glob = |k: usize, g: usize| format!("\"m{k}-{g}-{}*\"", "x".repeat(240));
        let mut yaml = String::from("client_keys:\n");
        for k in 0..2_500 {
            let globs: Vec<String> = (0..8).map(|g| glob(k, g)).collect();
            yaml.push_str(&format!(
                "  - name: app-{k}\n    models: [{}]\n",
                globs.join(", ")
            ));
        }
        assert!(yaml.len() > 5_000_000, "{}", yaml.len());

        let p = s
            .plan_config(req(file(&yaml, false)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(p.changes.len(), 2_500);
        let r = s
            .apply_config(req(file(&yaml, false)))
            .await
            .unwrap()
            .into_inner();
        assert!(
            r.lines.contains(&"created client_key app-2499".to_string()),
            "{:?}",
            &r.lines[..3]
        );
        let again = s
            .plan_config(req(file(&yaml, false)))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again.changes.len(), 2_500);
        assert!(again.changes.iter().all(|c| c.action == "unchanged"));
    }

    /// A deeply nested file (which the YAML parser takes time quadratic in
    /// its depth over) is refused before it is parsed, naming where; a
    /// viewer may send one (PlanConfig), so this is what they get.
    #[tokio::test]
    async fn a_deeply_nested_file_is_refused_before_parsing() {
        let t = temp_db();
        let s = ConfigFileSvc { admin: svc(&t) };
        let viewer = user(&s.admin, "vic", "viewer").await;
        let n = 200_000;
        for deep in [
            format!("a: {}1{}\n", "{a: ".repeat(n), "}".repeat(n)),
            format!("a: {}{}\n", "[".repeat(n), "]".repeat(n)),
            (0..20_000)
                .map(|d| format!("{}a:\n", " ".repeat(d % 500)))
                .collect(),
        ] {
            let e = s
                .plan_config(req_as(file(&deep, false), &viewer))
                .await
                .unwrap_err();
            assert_eq!(e.code(), Code::InvalidArgument);
            assert!(
                e.message().starts_with("line ") && e.message().contains("deeper than 64 levels"),
                "{e:?}"
            );
        }
        // An ordinary file, in flow style too, still plans.
        let flow =
            "providers: [{name: mock, kind: openai, keys: [{name: a, secret: sk-flow-01}]}]\n";
        for (ok, objects) in [(FILE, 3), (flow, 1)] {
            let p = s
                .plan_config(req_as(file(ok, false), &viewer))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(p.changes.len(), objects, "{p:?}");
            assert!(p.changes.iter().all(|c| c.action == "create"), "{p:?}");
        }
    }

    #[tokio::test]
    async fn bad_files_change_nothing() {
        let t = temp_db();
        let s = ConfigFileSvc { admin: svc(&t) };
        let var = FILE.replace("sk-upstream-secret-1", "${AIGW_MASTER_KEY}");
        let e = s.apply_config(req(file(&var, false))).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("variables cannot be used"), "{e:?}");
        // A new key without a secret is refused before anything changes.
        let no_secret = FILE.replace("        secret: sk-upstream-secret-1\n", "");
        let e = s
            .apply_config(req(file(&no_secret, false)))
            .await
            .unwrap_err();
        assert!(e.message().contains("needs a secret"), "{e:?}");
        // A price whose cost would overflow to infinity.
        let overpriced = FILE.replace("output: 10", "output: 1e308");
        let e = s
            .apply_config(req(file(&overpriced, false)))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(
            e.message().contains("output must be at most 1000000"),
            "{e:?}"
        );
        let big = "#".repeat(MAX_FILE_BYTES + 1);
        assert_eq!(
            s.plan_config(req(file(&big, false)))
                .await
                .unwrap_err()
                .code(),
            Code::InvalidArgument
        );
        let listed = s
            .admin
            .list_providers(req(ListRequest {}))
            .await
            .unwrap()
            .into_inner();
        assert!(listed.providers.is_empty());
        let e = s
            .export_config(tonic::Request::new(ExportConfigRequest {}))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated);
        let _ = TOKEN;
    }

    /// A file applying would refuse is refused by the plan too, with the
    /// same words, and not planned as if it would apply.
    #[tokio::test]
    async fn a_plan_refuses_what_applying_refuses() {
        let t = temp_db();
        let s = ConfigFileSvc { admin: svc(&t) };
        for (mistake, words) in [
            (FILE.replace("input: 2.5", "input: -1"), "input"),
            (
                FILE.replace("kind: openai-compatible", "kind: bogus"),
                "bogus",
            ),
            (
                FILE.replace(
                    "  - name: app\n",
                    &format!("  - name: {}\n", "k".repeat(129)),
                ),
                "name",
            ),
        ] {
            let plan = s.plan_config(req(file(&mistake, false))).await.unwrap_err();
            let apply = s
                .apply_config(req(file(&mistake, false)))
                .await
                .unwrap_err();
            assert_eq!(plan.code(), Code::InvalidArgument, "{plan:?}");
            assert_eq!(plan.message(), apply.message());
            assert!(plan.message().contains(words), "{plan:?}");
        }
    }
}
