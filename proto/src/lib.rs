//! The gRPC contract shared by the control plane and the data planes, and the
//! validated domain model both build from it. Generated `pb` types stay at the
//! edges (`snapshot`, `push`, `admin`); everything else works on `model`.
#![forbid(unsafe_code)]

pub mod channel;
pub mod delta;
pub mod json_text;
pub mod model;
pub mod prometheus;
pub mod tls;
pub mod trace_bounds;
pub mod wire;

/// Generated wire types.
pub mod pb {
    pub mod config {
        tonic::include_proto!("aigw.config.v1");
    }
    pub mod trace {
        tonic::include_proto!("aigw.trace.v1");
    }
    /// AdminService, IdentityService and InsightService (admin.proto,
    /// identity.proto, insight.proto: one package).
    pub mod admin {
        tonic::include_proto!("aigw.admin.v1");
    }
}

/// gRPC metadata a data plane sends on every call: the node id and region it
/// runs as (checked against its credential by the control plane).
pub const NODE_ID_HEADER: &str = "x-aigw-node-id";
pub const REGION_HEADER: &str = "x-aigw-region";

/// Largest configuration file (YAML) that ConfigFileService plans or
/// applies, the admin UI's "configuration as code". It fits, with room to
/// spare, in the control plane's 16 MiB bound on an Admin API message;
/// admin-web accepts a JSON body of this plus its escaping.
pub const MAX_CONFIG_FILE_BYTES: usize = 15 * 1024 * 1024;

/// Encoded `FileDescriptorSet` of every service, for gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/aigw_descriptor.bin"));
