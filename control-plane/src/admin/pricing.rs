//! Model prices (USD per million tokens), keyed by model name or glob.

use aigw_proto::pb::admin::{PriceSpec, UpsertResult};

use super::providers::unchanged;
use super::validate;
use crate::db::config::{self, PriceRow};
use crate::db::{AnyConnection, now_ms};
use crate::error::Result;

pub fn validate(spec: &PriceSpec) -> Result<()> {
    validate::glob("price", &spec.model)?;
    let what = format!("price {:?}", spec.model);
    validate::price(&what, "input", spec.input)?;
    validate::price(&what, "output", spec.output)?;
    if let Some(c) = spec.cached_input {
        validate::price(&what, "cached_input", c)?;
    }
    Ok(())
}

pub fn upsert(conn: &mut AnyConnection, spec: &PriceSpec) -> Result<(UpsertResult, bool)> {
    let row = PriceRow {
        model: spec.model.clone(),
        input: spec.input,
        output: spec.output,
        cached_input: spec.cached_input,
        updated_at_ms: now_ms(),
    };
    let created = match config::find_price(conn, &spec.model)? {
        Some(p)
            if p.input == row.input
                && p.output == row.output
                && p.cached_input == row.cached_input =>
        {
            return Ok((unchanged(), false));
        }
        Some(_) => {
            config::update_price(conn, &row)?;
            false
        }
        None => {
            config::insert_price(conn, &row)?;
            true
        }
    };
    Ok((
        UpsertResult {
            created,
            changed: true,
            generated_key: String::new(),
        },
        true,
    ))
}

pub fn list(conn: &mut AnyConnection) -> Result<Vec<PriceSpec>> {
    Ok(config::list_pricing(conn)?
        .into_iter()
        .map(|p| PriceSpec {
            model: p.model,
            input: p.input,
            output: p.output,
            cached_input: p.cached_input,
        })
        .collect())
}
