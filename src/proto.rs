//! Generated protocol types, in one place.
#![expect(missing_docs, reason = "generated from the .proto files")]

/// `telemetrygateway.v1`: Sourcegraph's Telemetry Gateway wire contract.
pub mod telemetrygateway {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("telemetrygateway.v1");
    }
}

/// `telespool.v1`: our own on-disk messages.
pub mod telespool {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("telespool.v1");
    }
}

#[cfg(test)]
pub(crate) mod arb;

/// The encoded `FileDescriptorSet` of every `.proto` file (for
/// prost-reflect and gRPC reflection).
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("file_descriptor_set");
