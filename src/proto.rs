//! Generated protobuf and gRPC code (see `proto/`).

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// The public API, package `rampart.v1`.
pub mod v1 {
    tonic::include_proto!("rampart.v1");
}

/// The node-to-node service, package `rampart.internal.v1`.
pub mod internal {
    tonic::include_proto!("rampart.internal.v1");
}

/// Descriptors of every service, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("rampart_descriptor");

/// flagd's evaluation service (served on the flagd listener, see `crate::flagd`).
pub mod flagd {
    /// `flagd.evaluation.v1`, which the Rust, Go and Java providers call.
    pub mod v1 {
        tonic::include_proto!("flagd.evaluation.v1");
    }
    /// `flagd.evaluation.v2`, which the Python provider calls.
    pub mod v2 {
        tonic::include_proto!("flagd.evaluation.v2");
    }

    /// Descriptors of both versions, for the flagd listener's reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("flagd_descriptor");
}
