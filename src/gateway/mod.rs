//! The Telemetry Gateway side of telespool: what a gateway does with the
//! events a Sourcegraph instance (or another telespool) streams to it. For
//! now this is only [`render`]: the per-event message a gateway publishes
//! (the JSON body `{"event": …, "metadata": …}` and its attributes), byte
//! for byte what Sourcegraph's gateway hands to Pub/Sub, so sinks
//! downstream (files, NATS JetStream) can be swapped for the real pipeline.

pub mod render;
