//! Configuration as code (ConfigFileService).

use super::answer;
use aigw_proto::pb::admin::{
    ConfigApplyResult, ConfigFile, ConfigFileRequest, ConfigPlan, ExportConfigRequest,
};
use axum::Json;
use axum::extract::State;

use crate::AppState;
use crate::error::{ApiResult, Errors};
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

/// What applying the file would change; changes nothing.
#[utoipa::path(post, path = "/config/plan", tag = "config-file",
    request_body = ConfigFileRequest,
    responses((status = 200, body = ConfigPlan), Errors))]
pub async fn plan(
    State(s): State<AppState>,
    c: Caller,
    Body(req): Body<ConfigFileRequest>,
) -> ApiResult<Json<ConfigPlan>> {
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
    answer(s.grpc.config_file().apply_config(c.req(req))).await
}
