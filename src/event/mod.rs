//! The event domain: what an event must be, and what of it may leave.
//!
//! ```text
//!                 incoming Event
//!                       │  validate::prepare_event (sidecar) / validate_event (gateway)
//!                       │  - feature/action rules, id (UUID v7) and timestamp defaults,
//!                       │    size and nesting limits
//!          ┌────────────┴─────────────┐
//!          ▼                          ▼
//!  event_logs row               export_mode.should_queue(&event)?
//!  (unredacted, with the             │ yes                  │ no: mirror only
//!   allowlist's answer for           ▼
//!   the "exportable" markers)   clone → redact::redact_with(allowlist, &mut copy, dotcom)
//!                                     (marketing cleared; private metadata cleared or
//!                                      cut to allowlisted string keys)
//! ```
//!
//! Everything here is pure and synchronous: no I/O, no clock (callers pass
//! `now`), no tokio, no configuration and no storage. It depends on
//! [`crate::proto`] and [`crate::clock`] only, and is used by the sidecar's
//! write path ([`crate::tee`]), the `event_logs` mirror's translation, the
//! ingest servers and the gateway, which validates with the same rules.
//! The settings types it defines ([`Limits`], [`Allowlist`],
//! [`ExportMode`]) are what the configuration holds.
//!
//! - [`allowlist`]: which event types may export which private-metadata keys.
//! - [`redact`](mod@redact): Sourcegraph's three redaction modes and how one is chosen.
//! - [`export_mode`]: `all`, `cody-only`, `disabled`.
//! - [`validate`]: validation, limits and defaults.
//! - [`json`]: `google.protobuf.Struct`/`Value` ⇄ `serde_json`.
//!
//! The rules are Sourcegraph's, read from its public repository
//! (`sourcegraph/sourcegraph-public-snapshot`): validation and defaults of
//! `internal/telemetry`, redaction of
//! `internal/telemetry/sensitivemetadataallowlist`, and the wire contract of
//! `lib/telemetrygateway/v1` (copied in `proto/`).

pub mod allowlist;
pub mod export_mode;
pub mod json;
pub mod redact;
pub mod validate;

pub use allowlist::{
    ADDITIONAL_ALLOWED_EVENT_TYPES_ENV, Allowlist, AllowlistEntry, AllowlistError,
    parse_additional_allowed_event_types,
};
pub use export_mode::{ExportMode, ParseExportModeError};
pub use redact::{RedactMode, mode_for, redact, redact_with, select_mode};
pub use validate::{
    Limits, ValidationError, fill_defaults, new_event_id, prepare_event, validate_event,
    validate_feature_action,
};
