//! Configuration as code (ConfigFileService).

use super::answer;
use aigw_proto::pb::admin::{
    ConfigApplyResult, ConfigFile, ConfigFileRequest, ConfigPlan, ExportConfigRequest,
};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::AppState;
use crate::error::{ApiError, ApiResult, Errors};
use crate::extract::Body;
use crate::session::Caller;

/// The live configuration as an apply file, secrets left out.
#[utoipa::path(get, path = "/config/export", tag = "config-file",
    responses((status = 200, body = ConfigFile), Errors))]
pub async fn export(State(s): State<AppState>, c: Caller) -> ApiResult<Json<ConfigFile>> {
    answer(
        s.grpc
            .config_file()
            .export_config(c.req(ExportConfigRequest {})),
    )
    .await
}

/// A file over the control plane's bound (its body within
/// `MAX_CONFIG_BODY` because it needed little JSON escaping) is refused
/// here with 413, the answer to any body too large, instead of being sent.
fn within_bound(req: &ConfigFileRequest) -> Result<(), ApiError> {
    let max = aigw_proto::MAX_CONFIG_FILE_BYTES;
    if req.yaml.len() > max {
        return Err(ApiError::Rejected {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            message: format!(
                "the file is {} bytes; at most {max} are taken",
                req.yaml.len()
            ),
        });
    }
    Ok(())
}

/// What applying the file would change; changes nothing.
#[utoipa::path(post, path = "/config/plan", tag = "config-file",
    request_body = ConfigFileRequest,
    responses((status = 200, body = ConfigPlan), Errors))]
pub async fn plan(
    State(s): State<AppState>,
    c: Caller,
    Body(req): Body<ConfigFileRequest>,
) -> ApiResult<Json<ConfigPlan>> {
    within_bound(&req)?;
    answer(s.grpc.config_file().plan_config(c.req(req))).await
}

/// Applies the file with the rules of `control-plane apply`.
#[utoipa::path(post, path = "/config/apply", tag = "config-file",
    request_body = ConfigFileRequest,
    responses((status = 200, body = ConfigApplyResult), Errors))]
pub async fn apply(
    State(s): State<AppState>,
    c: Caller,
    Body(req): Body<ConfigFileRequest>,
) -> ApiResult<Json<ConfigApplyResult>> {
    within_bound(&req)?;
    answer(s.grpc.config_file().apply_config(c.req(req))).await
}
