//! Talking to `AdminService`: the bearer token on every call, the channel
//! (`connect`), and `apply`, which checks a parsed file with the server's
//! rules and streams it to `AdminService.Apply`.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use aigw_proto::channel::ClientTls;
use aigw_proto::pb::admin::admin_service_client::AdminServiceClient;
use aigw_proto::pb::admin::apply_request::Part;
use aigw_proto::pb::admin::{
    ApplyHeader, ApplyOutcome, ApplyRequest, BudgetSpec, ClientKeyBatch, ClientKeySpec,
    OAuthTemplateSpec, PriceSpec, ProviderKeySpec, ProviderSpec, RouteSpec, TeamSpec,
};
use prost::Message as _;
use tonic::codegen::{Body, Bytes, StdError};
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};

use crate::error::{Error, Result, with_causes};
use crate::file::{ApplyFile, LimitsDoc, parse};
use crate::rules::{Objects, Rules};

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
    rules: &impl Rules,
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
    apply(&mut client, doc, prune, rules, &mut out).await
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

fn print<W: Write + ?Sized>(out: &mut W, o: &ApplyOutcome) -> Result<()> {
    writeln!(out, "{} {} {}", o.action, o.kind, o.name)?;
    if !o.generated_key.is_empty() {
        writeln!(
            out,
            "generated key for {} {}: {}",
            o.kind, o.name, o.generated_key
        )?;
    }
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

/// Most bytes of client keys per message (the server accepts 16 MiB).
const BATCH_BYTES: usize = 4 * 1024 * 1024;

/// The file as Apply messages: the header, then the keys in batches of at
/// most `max_batch`.
fn messages(header: ApplyHeader, keys: Vec<ClientKeySpec>, max_batch: usize) -> Vec<ApplyRequest> {
    let mut out = vec![ApplyRequest {
        part: Some(Part::Header(header)),
    }];
    let mut batch = Vec::new();
    let mut bytes = 0;
    for k in keys {
        let len = k.encoded_len();
        if batch.len() == max_batch || (bytes + len > BATCH_BYTES && !batch.is_empty()) {
            out.push(ApplyRequest {
                part: Some(Part::ClientKeys(ClientKeyBatch {
                    keys: std::mem::take(&mut batch),
                })),
            });
            bytes = 0;
        }
        bytes += len;
        batch.push(k);
    }
    if !batch.is_empty() {
        out.push(ApplyRequest {
            part: Some(Part::ClientKeys(ClientKeyBatch { keys: batch })),
        });
    }
    out
}

/// Applies everything in `doc` in one transaction; with `prune`, also
/// deletes the objects of those kinds that `doc` does not name. Prints one
/// line per object once the server has committed (nothing when it refused).
pub async fn apply<T: Transport, W: Write + ?Sized>(
    client: &mut AdminServiceClient<T>,
    doc: ApplyFile,
    prune: bool,
    rules: &impl Rules,
    out: &mut W,
) -> Result<()> {
    let (header, keys) = request(doc, prune, rules)?;
    let mut answer = client
        .apply(tokio_stream::iter(messages(
            header,
            keys,
            rules.max_batch(),
        )))
        .await
        .map_err(rpc("apply".into()))?
        .into_inner();
    let mut lines = Vec::new();
    while let Some(progress) = answer.message().await.map_err(rpc("apply".into()))? {
        lines.extend(progress.outcomes);
    }
    for o in &lines {
        print(out, o)?;
    }
    out.flush()?;
    Ok(())
}

/// What applying `doc` sends, every object checked with `rules` first: the
/// refusal a plan must give too, before anything is sent.
pub fn request(
    doc: ApplyFile,
    prune: bool,
    rules: &impl Rules,
) -> Result<(ApplyHeader, Vec<ClientKeySpec>)> {
    check_unique("provider", doc.providers.iter().map(|p| p.name.as_str()))?;
    check_unique("price", doc.pricing.iter().map(|p| p.model.as_str()))?;
    check_unique(
        "client_key",
        doc.client_keys.iter().map(|k| k.name.as_str()),
    )?;
    check_unique("route", doc.routes.iter().map(|r| r.model.as_str()))?;
    check_unique(
        "oauth_template",
        doc.oauth_templates.iter().map(|t| t.name.as_str()),
    )?;
    check_unique("team", doc.teams.iter().map(|t| t.name.as_str()))?;
    check_unique("user", doc.users.iter().map(|u| u.name.as_str()))?;

    // Build every object first and check it with the server's own rules, so
    // a mistake anywhere in the file is reported before anything is sent.
    let oauth_templates: Vec<OAuthTemplateSpec> = doc
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
    let providers: Vec<ProviderSpec> = doc
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
    // `-0` is refused like any negative amount; sent, a proto3 `-0.0`
    // would not be (it equals the default) and the server would see 0.
    for (i, p) in doc.pricing.iter().enumerate() {
        for (field, v) in [("input", p.input.0), ("output", p.output.0)] {
            if v == 0.0 && v.is_sign_negative() {
                return Err(Error::InvalidArgument(format!(
                    "pricing[{i}].{field}: must not be negative (-0 included)"
                )));
            }
        }
    }
    let pricing: Vec<PriceSpec> = doc
        .pricing
        .into_iter()
        .map(|p| PriceSpec {
            model: p.model,
            input: p.input.0,
            output: p.output.0,
            cached_input: p.cached_input.map(|c| c.0),
        })
        .collect();
    let keys: Vec<ClientKeySpec> = doc
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
                owner: k.owner.unwrap_or_default(),
            }
        })
        .collect();
    let routes: Vec<RouteSpec> = doc
        .routes
        .into_iter()
        .map(|r| RouteSpec {
            model: r.model,
            providers: r.providers,
            strict: r.strict,
            alias_of: r.alias_of.unwrap_or_default(),
        })
        .collect();
    let teams: Vec<TeamSpec> = doc
        .teams
        .iter()
        .map(|t| TeamSpec {
            name: t.name.clone(),
            members: t.members.clone(),
        })
        .collect();
    // Teams' budgets, then users'.
    let budgets: Vec<BudgetSpec> = doc
        .teams
        .iter()
        .map(|t| (format!("team:{}", t.name), t.limits.as_ref()))
        .chain(
            doc.users
                .iter()
                .map(|u| (format!("user:{}", u.name), u.limits.as_ref())),
        )
        .map(|(subject, limits)| BudgetSpec {
            subject,
            limits: Some(limits.map(LimitsDoc::to_spec).unwrap_or_default()),
        })
        .collect();
    rules
        .check(Objects {
            oauth_templates: &oauth_templates,
            providers: &providers,
            pricing: &pricing,
            client_keys: &keys,
            routes: &routes,
        })
        .map_err(Error::Refused)?;

    let header = ApplyHeader {
        oauth_templates,
        providers,
        pricing,
        routes,
        teams,
        budgets,
        prune,
        client_key_count: u32::try_from(keys.len())
            .map_err(|_| Error::invalid("too many client keys"))?,
    };
    Ok((header, keys))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::TestRules;

    fn key(name: &str) -> ClientKeySpec {
        ClientKeySpec {
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn keys_go_after_the_header_in_batches_the_server_accepts() {
        let keys = ["a", "b", "c", "d", "e"].map(key).to_vec();
        let msgs = messages(ApplyHeader::default(), keys, TestRules.max_batch());
        let sizes: Vec<Option<usize>> = msgs
            .iter()
            .map(|m| match &m.part {
                Some(Part::Header(_)) => None,
                Some(Part::ClientKeys(b)) => Some(b.keys.len()),
                None => Some(0),
            })
            .collect();
        assert_eq!(sizes, [None, Some(2), Some(2), Some(1)]);
        let only_header = messages(ApplyHeader::default(), Vec::new(), 2);
        assert_eq!(only_header.len(), 1);
    }

    #[test]
    fn a_token_that_cannot_be_a_header_is_a_settings_error() {
        let e = Bearer::new("bad\ntoken").err().unwrap();
        assert!(matches!(e, Error::Settings(_)), "{e:?}");
        assert!(e.to_string().contains("AIGW_ADMIN_TOKEN"), "{e}");
    }
}
