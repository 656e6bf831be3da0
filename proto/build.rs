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
        .compile_fds(fds)?;
    Ok(())
}
