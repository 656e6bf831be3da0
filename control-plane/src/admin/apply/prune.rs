//! `--prune`: deleting what the configuration no longer names, in the
//! order that keeps every step valid (routes before the providers they
//! name), inside the apply's transaction.

use std::collections::HashSet;

use super::Report;
use crate::admin::{budgets, client_keys, oauth, routes};
use crate::db::AnyConnection;
use crate::db::config;
use crate::error::Result;

/// What the configuration names, by kind.
pub struct Named {
    pub providers: HashSet<String>,
    pub prices: HashSet<String>,
    pub keys: HashSet<String>,
    pub routes: HashSet<String>,
    pub teams: HashSet<String>,
    /// Budget subjects ("user:NAME", "team:NAME").
    pub budgets: HashSet<String>,
    pub templates: HashSet<String>,
}

/// Deletes client keys no user owns, prices, routes, providers, stored
/// OAuth templates and teams the configuration does not name, and the budgets of users it does not
/// name. Keys a user owns were made through the API by that user, not by a
/// file: pruning leaves them alone.
pub fn run(conn: &mut AnyConnection, named: &Named, report: &mut Report) -> Result<()> {
    let gone: Vec<String> = config::list_client_keys(conn, None)?
        .into_iter()
        .filter(|k| k.owner_user_id.is_none() && !named.keys.contains(&k.name))
        .map(|k| k.name)
        .collect();
    config::delete_client_keys(conn, &gone)?;
    for name in &gone {
        report.deleted("client_key", name);
    }
    for p in config::list_pricing(conn)? {
        if !named.prices.contains(&p.model) && config::delete_price(conn, &p.model)? {
            report.deleted("price", &p.model);
        }
    }
    for r in config::list_routes(conn)? {
        if !named.routes.contains(&r.model) && config::delete_route(conn, &r.model)? {
            report.deleted("route", &r.model);
        }
    }
    for (p, _) in config::list_providers(conn)? {
        if named.providers.contains(&p.name) {
            continue;
        }
        routes::check_unused(conn, &p.name)?;
        if config::delete_provider(conn, &p.name)? {
            report.deleted("provider", &p.name);
        }
    }
    // After the providers whose keys may name them. Only stored templates:
    // built-in ones are not the file's to delete (a stored override of one
    // is, and the built-in takes its place again).
    for t in crate::db::oauth::templates(conn)? {
        if !named.templates.contains(&t.name) && oauth::delete_template(conn, &t.name)?.0.deleted {
            report.deleted("oauth_template", &t.name);
        }
    }
    for t in crate::db::budgets::list_teams(conn)? {
        if !named.teams.contains(&t.name) && crate::db::budgets::delete_team(conn, &t.id)? {
            report.deleted("team", &t.name);
        }
    }
    let users = client_keys::usernames(conn)?;
    for b in crate::db::budgets::list_budgets(conn)? {
        let Some(("user", id)) = b.subject.split_once(':') else {
            continue;
        };
        let subject = format!("user:{}", users.get(id).cloned().unwrap_or_default());
        if named.budgets.contains(&subject) {
            continue;
        }
        budgets::set(conn, &subject, &budgets::Stored::default())?;
        report.deleted("budget", &subject);
    }
    Ok(())
}
