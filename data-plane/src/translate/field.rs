//! Typed reads of JSON fields shared by the codecs; a wrong type is the
//! app's mistake, reported with the field's path.

use serde_json::Value;

use super::ir::Unsupported;

pub fn str_of<'a>(v: &'a Value, field: &str) -> Result<&'a str, Unsupported> {
    v.as_str()
        .ok_or_else(|| Unsupported::invalid(field, "expected a string"))
}

/// `v[key]` as a string; the error names `at.key`.
pub fn str_field<'a>(v: &'a Value, key: &str, at: &str) -> Result<&'a str, Unsupported> {
    v.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| Unsupported::invalid(format!("{at}.{key}"), "expected a string"))
}

pub fn u64_of(v: &Value, field: &str) -> Result<u64, Unsupported> {
    v.as_u64()
        .ok_or_else(|| Unsupported::invalid(field, "expected a non-negative integer"))
}

pub fn f64_of(v: &Value, field: &str) -> Result<f64, Unsupported> {
    v.as_f64()
        .ok_or_else(|| Unsupported::invalid(field, "expected a number"))
}
