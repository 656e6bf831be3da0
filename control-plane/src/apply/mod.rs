//! `control-plane apply -f FILE [--prune]`: declarative configuration through
//! the Admin API, exactly like any other automation client. The whole file is
//! parsed and expanded before the first request, so a typo or a missing
//! variable changes nothing.

pub mod export;
pub mod file;
pub mod plan;

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use aigw_proto::channel::ClientTls;
use aigw_proto::pb::admin::admin_service_client::AdminServiceClient;
use aigw_proto::pb::admin::{
    BudgetSpec, ClientKeySpec, ListRequest, NameRequest, OAuthTemplateSpec, PriceSpec,
    ProviderKeySpec, ProviderSpec, RouteSpec, TeamSpec, UpsertResult,
};
use tonic::codegen::{Body, Bytes, StdError};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

pub use file::{ApplyFile, parse};
use file::{LimitsDoc, TeamDoc};

use crate::error::{Error, Result, with_causes};

/// Adds `authorization: Bearer TOKEN` to every request.
#[derive(Clone)]
pub struct Bearer(MetadataValue<Ascii>);

impl Bearer {
    /// The `authorization` value of a call, passed on as it is.
    pub fn from_header(value: MetadataValue<Ascii>) -> Self {
        Self(value)
    }

    pub fn new(token: &str) -> Result<Self> {
        format!("Bearer {token}").parse().map(Self).map_err(|_| {
            Error::Settings("AIGW_ADMIN_TOKEN contains characters not allowed in a header".into())
        })
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut req: Request<()>) -> Result<Request<()>, Status> {
        req.metadata_mut().insert("authorization", self.0.clone());
        Ok(req)
    }
}

pub type Client = AdminServiceClient<InterceptedService<Channel, Bearer>>;

/// What `apply` can talk to AdminService over: a network channel (the
/// `apply` command), or the service itself in process (the admin UI's
/// ConfigFileService), so both apply a file by the same code and rules.
pub trait Transport:
    tonic::client::GrpcService<
        tonic::body::Body,
        Error: Into<StdError>,
        ResponseBody: Body<Data = Bytes, Error: Into<StdError> + Send> + Send + 'static,
    >
{
}

impl<T> Transport for T where
    T: tonic::client::GrpcService<
            tonic::body::Body,
            Error: Into<StdError>,
            ResponseBody: Body<Data = Bytes, Error: Into<StdError> + Send> + Send + 'static,
        >
{
}

/// Connects to the Admin API at `url`; an https:// URL is verified with
/// `tls` (AIGW_CA_FILE, or the public roots) and presents its client
/// certificate when one is given (mTLS).
pub async fn connect(url: &str, token: &str, tls: &ClientTls) -> Result<Client> {
    let endpoint = aigw_proto::channel::endpoint(url, tls)
        .map_err(|e| Error::Settings(format!("AIGW_CONTROL_PLANE {url:?} is not usable: {e}")))?
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60));
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| Error::Unreachable(format!("{url}: {}", with_causes(&e))))?;
    Ok(AdminServiceClient::with_interceptor(
        channel,
        Bearer::new(token)?,
    ))
}

/// Reads, expands and applies `path`, printing one line per object.
pub async fn run(
    path: &Path,
    prune: bool,
    url: &str,
    token: Option<&str>,
    tls: &ClientTls,
) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Settings(format!("cannot read {}: {e}", path.display())))?;
    let doc = parse(&text, &|name| std::env::var(name).ok())
        .map_err(|e| Error::InvalidArgument(format!("{}: {e}", path.display())))?;
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::Settings("apply needs AIGW_ADMIN_TOKEN (or --admin-token)".into()))?;
    let mut client = connect(url, token, tls).await?;
    let mut out = std::io::stdout().lock();
    apply(&mut client, doc, prune, &mut out).await
}

fn rpc(what: String) -> impl FnOnce(Status) -> Error {
    move |status| {
        let status = if status.code() == tonic::Code::Unauthenticated {
            Status::unauthenticated(format!("{} (check AIGW_ADMIN_TOKEN)", status.message()))
        } else {
            status
        };
        Error::Rpc {
            what,
            status: Box::new(status),
        }
    }
}

fn report<W: Write + ?Sized>(out: &mut W, kind: &str, name: &str, r: &UpsertResult) -> Result<()> {
    let verb = match (r.created, r.changed) {
        (true, _) => "created",
        (false, true) => "updated",
        (false, false) => "unchanged",
    };
    writeln!(out, "{verb} {kind} {name}")?;
    if !r.generated_key.is_empty() {
        writeln!(out, "generated key for {kind} {name}: {}", r.generated_key)?;
    }
    out.flush()?;
    Ok(())
}

fn check_unique<'a>(kind: &str, names: impl Iterator<Item = &'a str>) -> Result<HashSet<String>> {
    let mut seen = HashSet::new();
    for n in names {
        if !seen.insert(n.to_string()) {
            return Err(Error::invalid(format!("{kind} {n:?} is listed twice")));
        }
    }
    Ok(seen)
}

/// Upserts everything in `doc`; with `prune`, then deletes the objects of
/// those kinds that `doc` does not name. Lines go to `out` as they happen,
/// so a failure midway still shows what was done.
pub async fn apply<T: Transport, W: Write + ?Sized>(
    client: &mut AdminServiceClient<T>,
    doc: ApplyFile,
    prune: bool,
    out: &mut W,
) -> Result<()> {
    let providers = check_unique("provider", doc.providers.iter().map(|p| p.name.as_str()))?;
    let prices = check_unique("price", doc.pricing.iter().map(|p| p.model.as_str()))?;
    let keys = check_unique(
        "client_key",
        doc.client_keys.iter().map(|k| k.name.as_str()),
    )?;
    let routes = check_unique("route", doc.routes.iter().map(|r| r.model.as_str()))?;
    let templates = check_unique(
        "oauth_template",
        doc.oauth_templates.iter().map(|t| t.name.as_str()),
    )?;
    let template_specs: Vec<OAuthTemplateSpec> = doc
        .oauth_templates
        .into_iter()
        .map(|t| OAuthTemplateSpec {
            name: t.name,
            description: t.description,
            authorize_url: t.authorize_url,
            token_url: t.token_url,
            device_authorization_url: t.device_authorization_url,
            client_id: t.client_id,
            client_secret: t.client_secret.unwrap_or_default(),
            scopes: t.scopes,
            redirect_uri: t.redirect_uri,
            authorize_params: t.authorize_params,
            token_format: t.token_format,
            request_headers: t.request_headers,
            api_base_url: t.api_base_url,
            provider_kind: t.provider_kind,
            notes: t.notes,
            ..Default::default()
        })
        .collect();
    for t in &template_specs {
        crate::oauth::template::validate(t.clone())?;
    }
    check_unique("team", doc.teams.iter().map(|t| t.name.as_str()))?;
    check_unique("user", doc.users.iter().map(|u| u.name.as_str()))?;
    let (doc_teams, doc_users) = (doc.teams, doc.users);

    // Build every object first and check it with the server's own rules, so
    // a mistake anywhere in the file is reported before anything changes.
    let provider_specs: Vec<ProviderSpec> = doc
        .providers
        .into_iter()
        .map(|p| ProviderSpec {
            name: p.name,
            kind: p.kind,
            base_url: p.base_url,
            models: p.models,
            strategy: p.strategy,
            keys: p
                .keys
                .into_iter()
                .map(|k| ProviderKeySpec {
                    name: k.name,
                    secret: k.secret,
                    weight: k.weight.0,
                    oauth_template: k.oauth,
                })
                .collect(),
            model_map: p.model_map,
            health_check_interval_secs: p.health_check.map(|h| h.interval_secs.0),
            affinity: p.affinity,
        })
        .collect();
    let price_specs: Vec<PriceSpec> = doc
        .pricing
        .into_iter()
        .map(|p| PriceSpec {
            model: p.model,
            input: p.input.0,
            output: p.output.0,
            cached_input: p.cached_input.map(|c| c.0),
        })
        .collect();
    let key_specs: Vec<ClientKeySpec> = doc
        .client_keys
        .into_iter()
        .map(|k| {
            let l = k.limits.unwrap_or_default().to_spec();
            ClientKeySpec {
                name: k.name,
                key: k.key.unwrap_or_default(),
                models: k.models,
                rpm: l.rpm,
                tokens_per_day: l.tokens_per_day,
                cost_per_day: l.cost_per_day,
                rps: l.rps,
                tokens_per_minute: l.tokens_per_minute,
                cost_per_month: l.cost_per_month,
                concurrent: l.concurrent,
                global: l.global,
                when_store_down: l.when_store_down,
                expires_at_ms: k.expires_at.map_or(0, |e| e.0),
                owner: String::new(),
            }
        })
        .collect();
    let route_specs: Vec<RouteSpec> = doc
        .routes
        .into_iter()
        .map(|r| RouteSpec {
            model: r.model,
            providers: r.providers,
            strict: r.strict,
            alias_of: r.alias_of.unwrap_or_default(),
        })
        .collect();
    preflight(
        client,
        &provider_specs,
        &price_specs,
        &key_specs,
        &route_specs,
    )
    .await?;

    // Before the providers whose keys name them.
    for spec in template_specs {
        let name = spec.name.clone();
        let r = client
            .upsert_o_auth_template(spec)
            .await
            .map_err(rpc(format!("oauth_template {name}")))?
            .into_inner();
        report(out, "oauth_template", &name, &r)?;
    }
    for spec in provider_specs {
        let name = spec.name.clone();
        let r = client
            .upsert_provider(spec)
            .await
            .map_err(rpc(format!("provider {name}")))?
            .into_inner();
        report(out, "provider", &name, &r)?;
    }
    for spec in price_specs {
        let model = spec.model.clone();
        let r = client
            .upsert_price(spec)
            .await
            .map_err(rpc(format!("price {model}")))?
            .into_inner();
        report(out, "price", &model, &r)?;
    }
    for spec in key_specs {
        let name = spec.name.clone();
        let r = client
            .upsert_client_key(spec)
            .await
            .map_err(rpc(format!("client_key {name}")))?
            .into_inner();
        report(out, "client_key", &name, &r)?;
    }
    // After the providers they name.
    for spec in route_specs {
        let model = spec.model.clone();
        let r = client
            .upsert_route(spec)
            .await
            .map_err(rpc(format!("route {model}")))?
            .into_inner();
        report(out, "route", &model, &r)?;
    }
    // Teams, then budgets (of teams and users).
    let mut budget_subjects = HashSet::new();
    for t in &doc_teams {
        let r = client
            .upsert_team(TeamSpec {
                name: t.name.clone(),
                members: t.members.clone(),
            })
            .await
            .map_err(rpc(format!("team {}", t.name)))?
            .into_inner();
        report(out, "team", &t.name, &r)?;
    }
    let budget_specs = doc_teams
        .iter()
        .map(|t| (format!("team:{}", t.name), t.limits.as_ref()))
        .chain(
            doc_users
                .iter()
                .map(|u| (format!("user:{}", u.name), u.limits.as_ref())),
        );
    for (subject, limits) in budget_specs {
        budget_subjects.insert(subject.clone());
        let r = client
            .set_budget(BudgetSpec {
                subject: subject.clone(),
                limits: Some(limits.map(LimitsDoc::to_spec).unwrap_or_default()),
            })
            .await
            .map_err(rpc(format!("budget {subject}")))?
            .into_inner();
        report(out, "budget", &subject, &r)?;
    }
    if prune {
        let named = Named {
            providers,
            prices,
            keys,
            routes,
            templates,
        };
        prune_missing(client, &named, out).await?;
        prune_budgets(client, &doc_teams, &budget_subjects, out).await?;
    }
    Ok(())
}

/// Deletes the teams the file does not name, and the budgets of users (and
/// teams) it does not name.
async fn prune_budgets<T: Transport, W: Write + ?Sized>(
    client: &mut AdminServiceClient<T>,
    teams: &[TeamDoc],
    subjects: &HashSet<String>,
    out: &mut W,
) -> Result<()> {
    let listed = client
        .list_teams(ListRequest {})
        .await
        .map_err(rpc("listing teams".into()))?
        .into_inner();
    for t in listed
        .teams
        .into_iter()
        .filter(|t| !teams.iter().any(|d| d.name == t.name))
    {
        let r = client
            .delete_team(NameRequest {
                name: t.name.clone(),
            })
            .await
            .map_err(rpc(format!("deleting team {}", t.name)))?;
        if r.into_inner().deleted {
            writeln!(out, "deleted team {}", t.name)?;
        }
    }
    let listed = client
        .list_budgets(ListRequest {})
        .await
        .map_err(rpc("listing budgets".into()))?
        .into_inner();
    for b in listed
        .budgets
        .into_iter()
        .filter(|b| !subjects.contains(&b.subject) && b.subject.starts_with("user:"))
    {
        client
            .set_budget(BudgetSpec {
                subject: b.subject.clone(),
                limits: Some(Default::default()),
            })
            .await
            .map_err(rpc(format!("deleting budget {}", b.subject)))?;
        writeln!(out, "deleted budget {}", b.subject)?;
    }
    Ok(())
}

/// Checks every object of the file with the rules the server applies, and
/// that each route names providers the file or the server has.
async fn preflight<T: Transport>(
    client: &mut AdminServiceClient<T>,
    providers: &[ProviderSpec],
    prices: &[PriceSpec],
    keys: &[ClientKeySpec],
    routes: &[RouteSpec],
) -> Result<()> {
    for p in providers {
        crate::admin::providers::validate(p.clone())?;
    }
    for p in prices {
        crate::admin::pricing::validate(p)?;
    }
    for k in keys {
        crate::admin::client_keys::validate(k.clone())?;
    }
    // A key with neither a secret nor an OAuth template keeps the stored
    // secret, so the server must have it.
    let keeps_secret =
        |k: &ProviderKeySpec| k.secret.trim().is_empty() && k.oauth_template.is_empty();
    let keeps_a_secret = providers.iter().any(|p| p.keys.iter().any(keeps_secret));
    if routes.is_empty() && !keeps_a_secret {
        return Ok(());
    }
    let existing = client
        .list_providers(ListRequest {})
        .await
        .map_err(rpc("listing providers".into()))?
        .into_inner()
        .providers;
    for p in providers {
        for k in p.keys.iter().filter(|k| keeps_secret(k)) {
            let stored = existing
                .iter()
                .any(|e| e.name == p.name && e.keys.iter().any(|ek| ek.name == k.name));
            if !stored {
                return Err(Error::invalid(format!(
                    "provider {:?}: key {:?} needs a secret (only a key the server has may leave it out)",
                    p.name, k.name
                )));
            }
        }
    }
    for r in routes {
        crate::admin::routes::validate(r)?;
        for name in &r.providers {
            let known = providers.iter().any(|p| &p.name == name)
                || existing.iter().any(|p| &p.name == name);
            if !known {
                return Err(Error::invalid(format!(
                    "route {:?} names provider {name:?}, which neither this file nor the server has",
                    r.model
                )));
            }
        }
    }
    Ok(())
}

/// What the file names, by kind.
struct Named {
    providers: HashSet<String>,
    prices: HashSet<String>,
    keys: HashSet<String>,
    routes: HashSet<String>,
    templates: HashSet<String>,
}

/// Deletes client keys (those no user owns), prices, routes and providers
/// not named in the file (in that order: routes before the providers they
/// name).
async fn prune_missing<T: Transport, W: Write + ?Sized>(
    client: &mut AdminServiceClient<T>,
    named: &Named,
    out: &mut W,
) -> Result<()> {
    let Named {
        providers,
        prices,
        keys,
        routes,
        templates,
    } = named;
    let listed = client
        .list_client_keys(ListRequest {})
        .await
        .map_err(rpc("listing client keys".into()))?
        .into_inner();
    // Keys a user owns were made through the API by that user, not by a
    // file: pruning leaves them alone.
    for k in listed
        .client_keys
        .into_iter()
        .filter(|k| !keys.contains(&k.name) && k.owner.is_empty())
    {
        let r = client
            .delete_client_key(NameRequest {
                name: k.name.clone(),
            })
            .await
            .map_err(rpc(format!("deleting client_key {}", k.name)))?;
        if r.into_inner().deleted {
            writeln!(out, "deleted client_key {}", k.name)?;
        }
    }
    let listed = client
        .list_pricing(ListRequest {})
        .await
        .map_err(rpc("listing pricing".into()))?
        .into_inner();
    for p in listed
        .pricing
        .into_iter()
        .filter(|p| !prices.contains(&p.model))
    {
        let r = client
            .delete_price(NameRequest {
                name: p.model.clone(),
            })
            .await
            .map_err(rpc(format!("deleting price {}", p.model)))?;
        if r.into_inner().deleted {
            writeln!(out, "deleted price {}", p.model)?;
        }
    }
    let listed = client
        .list_routes(ListRequest {})
        .await
        .map_err(rpc("listing routes".into()))?
        .into_inner();
    for r in listed
        .routes
        .into_iter()
        .filter(|r| !routes.contains(&r.model))
    {
        let d = client
            .delete_route(NameRequest {
                name: r.model.clone(),
            })
            .await
            .map_err(rpc(format!("deleting route {}", r.model)))?;
        if d.into_inner().deleted {
            writeln!(out, "deleted route {}", r.model)?;
        }
    }
    let listed = client
        .list_providers(ListRequest {})
        .await
        .map_err(rpc("listing providers".into()))?
        .into_inner();
    for p in listed
        .providers
        .into_iter()
        .filter(|p| !providers.contains(&p.name))
    {
        let r = client
            .delete_provider(NameRequest {
                name: p.name.clone(),
            })
            .await
            .map_err(rpc(format!("deleting provider {}", p.name)))?;
        if r.into_inner().deleted {
            writeln!(out, "deleted provider {}", p.name)?;
        }
    }
    // After the providers whose keys may name them. Built-in templates are
    // not the file's to delete; a stored override of one is.
    let listed = client
        .list_o_auth_templates(ListRequest {})
        .await
        .map_err(rpc("listing oauth templates".into()))?
        .into_inner();
    for t in listed
        .templates
        .into_iter()
        .filter(|t| (!t.builtin || t.overrides_builtin) && !templates.contains(&t.name))
    {
        let r = client
            .delete_o_auth_template(NameRequest {
                name: t.name.clone(),
            })
            .await
            .map_err(rpc(format!("deleting oauth_template {}", t.name)))?;
        if r.into_inner().deleted {
            writeln!(out, "deleted oauth_template {}", t.name)?;
        }
    }
    out.flush()?;
    Ok(())
}
