//! Compiles the protobuf contracts without a system `protoc`: protox parses
//! the `.proto` files in pure Rust (well-known types included) and
//! tonic-prost-build generates the messages and the gRPC service. The encoded
//! `FileDescriptorSet` is kept for prost-reflect (protojson).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/telemetrygateway/v1/telemetrygateway.proto",
        "proto/telespool/v1/log.proto",
        "proto/telespool/v1/export.proto",
    ];
    let fds = protox::compile(files, ["proto"])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("file_descriptor_set.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        // Maps encode in key order: the same event always gives the same
        // bytes (stable queue contents, goldens and dedup).
        .btree_map(".")
        .bytes(".telespool.v1.RecordEnvelope.event")
        .bytes(".telespool.v1.RawEventsPayload.events")
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
