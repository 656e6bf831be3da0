//! Budgets above keys, teams, regions' leases of global budgets, budget
//! alerts and the webhooks they go to.

use diesel::prelude::*;

use super::AnyConnection;
use super::schema::{budget_alerts, budget_leases, budgets, teams, users, webhooks};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = budgets, treat_none_as_null = true)]
pub struct BudgetRow {
    /// "user:<id>" or "team:<id>".
    pub subject: String,
    pub rps: Option<i64>,
    pub rpm: Option<i64>,
    pub tokens_per_minute: Option<i64>,
    pub tokens_per_day: Option<i64>,
    pub cost_per_day: Option<f64>,
    pub cost_per_month: Option<f64>,
    pub concurrent: Option<i64>,
    pub global: bool,
    pub when_store_down: String,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = teams)]
pub struct TeamRow {
    pub id: String,
    pub name: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Queryable, Selectable, Insertable)]
#[diesel(table_name = budget_leases)]
pub struct LeaseRow {
    pub budget: String,
    pub region: String,
    pub period: String,
    pub tokens: Option<i64>,
    pub cost: Option<f64>,
    pub updated_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = budget_alerts)]
pub struct AlertRow {
    pub budget: String,
    pub period: String,
    pub threshold: i32,
    pub fired_at_ms: i64,
    pub delivered_at_ms: i64,
    pub attempts: i32,
    pub last_error: String,
    pub payload: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = webhooks)]
pub struct WebhookRow {
    pub name: String,
    pub url: String,
    pub secret_enc: String,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
}

// --- budgets ---

pub fn list_budgets(conn: &mut AnyConnection) -> Result<Vec<BudgetRow>> {
    Ok(budgets::table
        .order(budgets::subject)
        .select(BudgetRow::as_select())
        .load(conn)?)
}

pub fn find_budget(conn: &mut AnyConnection, subject: &str) -> Result<Option<BudgetRow>> {
    Ok(budgets::table
        .filter(budgets::subject.eq(subject))
        .select(BudgetRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn put_budget(conn: &mut AnyConnection, row: &BudgetRow) -> Result<()> {
    diesel::delete(budgets::table.filter(budgets::subject.eq(&row.subject))).execute(conn)?;
    diesel::insert_into(budgets::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn delete_budget(conn: &mut AnyConnection, subject: &str) -> Result<bool> {
    Ok(diesel::delete(budgets::table.filter(budgets::subject.eq(subject))).execute(conn)? > 0)
}

// --- teams ---

pub fn list_teams(conn: &mut AnyConnection) -> Result<Vec<TeamRow>> {
    Ok(teams::table
        .order(teams::name)
        .select(TeamRow::as_select())
        .load(conn)?)
}

pub fn find_team(conn: &mut AnyConnection, name: &str) -> Result<Option<TeamRow>> {
    Ok(teams::table
        .filter(teams::name.eq(name))
        .select(TeamRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert_team(conn: &mut AnyConnection, row: &TeamRow) -> Result<()> {
    diesel::insert_into(teams::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Deletes the team, its budget and its members' membership.
pub fn delete_team(conn: &mut AnyConnection, id: &str) -> Result<bool> {
    diesel::update(users::table.filter(users::team_id.eq(id)))
        .set(users::team_id.eq(None::<String>))
        .execute(conn)?;
    diesel::delete(budgets::table.filter(budgets::subject.eq(format!("team:{id}"))))
        .execute(conn)?;
    Ok(diesel::delete(teams::table.filter(teams::id.eq(id))).execute(conn)? > 0)
}

/// Usernames of the team's members, sorted.
pub fn members(conn: &mut AnyConnection, team_id: &str) -> Result<Vec<String>> {
    Ok(users::table
        .filter(users::team_id.eq(team_id))
        .order(users::username)
        .select(users::username)
        .load(conn)?)
}

/// Makes exactly `user_ids` the team's members.
pub fn set_members(conn: &mut AnyConnection, team_id: &str, user_ids: &[String]) -> Result<()> {
    diesel::update(
        users::table
            .filter(users::team_id.eq(team_id))
            .filter(users::id.ne_all(user_ids)),
    )
    .set(users::team_id.eq(None::<String>))
    .execute(conn)?;
    diesel::update(users::table.filter(users::id.eq_any(user_ids)))
        .set(users::team_id.eq(team_id))
        .execute(conn)?;
    Ok(())
}

/// (user id, team id) of every user in a team.
pub fn memberships(conn: &mut AnyConnection) -> Result<Vec<(String, String)>> {
    let rows: Vec<(String, Option<String>)> = users::table
        .filter(users::team_id.is_not_null())
        .select((users::id, users::team_id))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(u, t)| t.map(|t| (u, t)))
        .collect())
}

// --- leases ---

pub fn leases(conn: &mut AnyConnection, periods: &[String]) -> Result<Vec<LeaseRow>> {
    Ok(budget_leases::table
        .filter(budget_leases::period.eq_any(periods))
        .order((
            budget_leases::budget,
            budget_leases::region,
            budget_leases::period,
        ))
        .select(LeaseRow::as_select())
        .load(conn)?)
}

pub fn put_lease(conn: &mut AnyConnection, row: &LeaseRow) -> Result<()> {
    diesel::delete(
        budget_leases::table
            .filter(budget_leases::budget.eq(&row.budget))
            .filter(budget_leases::region.eq(&row.region))
            .filter(budget_leases::period.eq(&row.period)),
    )
    .execute(conn)?;
    diesel::insert_into(budget_leases::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Forgets leases of periods other than `keep`.
pub fn prune_leases(conn: &mut AnyConnection, keep: &[String]) -> Result<usize> {
    Ok(
        diesel::delete(budget_leases::table.filter(budget_leases::period.ne_all(keep)))
            .execute(conn)?,
    )
}

// --- alerts ---

/// Records the alert unless it was already; true when it is new.
pub fn fire_alert(conn: &mut AnyConnection, row: &AlertRow) -> Result<bool> {
    let exists = budget_alerts::table
        .filter(budget_alerts::budget.eq(&row.budget))
        .filter(budget_alerts::period.eq(&row.period))
        .filter(budget_alerts::threshold.eq(row.threshold))
        .count()
        .get_result::<i64>(conn)?
        > 0;
    if exists {
        return Ok(false);
    }
    diesel::insert_into(budget_alerts::table)
        .values(row)
        .execute(conn)?;
    Ok(true)
}

pub fn undelivered_alerts(conn: &mut AnyConnection) -> Result<Vec<AlertRow>> {
    Ok(budget_alerts::table
        .filter(budget_alerts::delivered_at_ms.eq(0))
        .order(budget_alerts::fired_at_ms)
        .select(AlertRow::as_select())
        .load(conn)?)
}

pub fn alert_tried(
    conn: &mut AnyConnection,
    a: &AlertRow,
    delivered_at_ms: i64,
    error: &str,
) -> Result<()> {
    diesel::update(
        budget_alerts::table
            .filter(budget_alerts::budget.eq(&a.budget))
            .filter(budget_alerts::period.eq(&a.period))
            .filter(budget_alerts::threshold.eq(a.threshold)),
    )
    .set((
        budget_alerts::delivered_at_ms.eq(delivered_at_ms),
        budget_alerts::attempts.eq(a.attempts + 1),
        budget_alerts::last_error.eq(error),
    ))
    .execute(conn)?;
    Ok(())
}

// --- webhooks ---

pub fn list_webhooks(conn: &mut AnyConnection) -> Result<Vec<WebhookRow>> {
    Ok(webhooks::table
        .order(webhooks::name)
        .select(WebhookRow::as_select())
        .load(conn)?)
}

pub fn put_webhook(conn: &mut AnyConnection, row: &WebhookRow) -> Result<()> {
    diesel::delete(webhooks::table.filter(webhooks::name.eq(&row.name))).execute(conn)?;
    diesel::insert_into(webhooks::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn delete_webhook(conn: &mut AnyConnection, name: &str) -> Result<bool> {
    Ok(diesel::delete(webhooks::table.filter(webhooks::name.eq(name))).execute(conn)? > 0)
}
