//! Compiles `proto/*.proto` with protox (pure Rust, no protoc) and keeps the
//! descriptor set so the control plane can serve gRPC reflection.
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/config.proto",
        "proto/trace.proto",
        "proto/admin.proto",
        "proto/identity.proto",
        "proto/insight.proto",
        "proto/overview.proto",
        "proto/config_file.proto",
        "proto/sign_in.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("aigw_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Sorted maps keep snapshot encoding, and so its version hash, stable.
        .btree_map(".")
        // Encoded once, shared by every node's stream (bytes::Bytes).
        .bytes(".aigw.config.v1.SnapshotMessage")
        // The Admin API's messages are also admin-web's JSON API (feature
        // `json`): serde with proto3 defaults, and an OpenAPI schema.
        .type_attribute(
            ".aigw.admin.v1",
            "#[cfg_attr(feature = \"json\", derive(serde::Serialize, serde::Deserialize, utoipa::ToSchema))]",
        )
        // A field the API does not know is refused, not ignored: a typo
        // (`model` for `models`) would otherwise save the default (every
        // model allowed), or a limits body wrapped once too often would
        // remove a budget.
        .message_attribute(
            ".aigw.admin.v1",
            "#[cfg_attr(feature = \"json\", serde(default, deny_unknown_fields))]",
        )
        .compile_fds(fds)?;
    Ok(())
}
