//! The export mode: which events are queued for export at all.
//!
//! Sourcegraph derives it from the license key (an air-gapped license
//! disables export, some licenses export Cody events only, no key or an
//! invalid one exports all); the sidecar takes it from configuration. An event the mode keeps out of the
//! queue still gets its `event_logs` row.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::proto::telemetrygateway::v1::Event;

/// Which events are queued for export.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExportMode {
    /// Every event (`all`, the default, as for an unlicensed instance).
    #[default]
    All,
    /// Only Cody events: feature `cody` or `cody.*` (`cody-only`).
    CodyOnly,
    /// Nothing (`disabled`).
    Disabled,
}

impl ExportMode {
    /// Every mode, in the order the choices are listed.
    pub const ALL_MODES: [ExportMode; 3] =
        [ExportMode::All, ExportMode::CodyOnly, ExportMode::Disabled];

    /// The mode's configuration spelling.
    pub fn as_str(&self) -> &'static str {
        match self {
            ExportMode::All => "all",
            ExportMode::CodyOnly => "cody-only",
            ExportMode::Disabled => "disabled",
        }
    }

    /// Whether `event` goes to the export queue under this mode.
    pub fn should_queue(&self, event: &Event) -> bool {
        match self {
            ExportMode::All => true,
            ExportMode::CodyOnly => event.feature == "cody" || event.feature.starts_with("cody."),
            ExportMode::Disabled => false,
        }
    }
}

impl fmt::Display for ExportMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An export mode spelling that is not one of the choices.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid export mode {value:?}: expected one of all, cody-only, disabled")]
pub struct ParseExportModeError {
    /// The value given.
    pub value: String,
}

impl FromStr for ExportMode {
    type Err = ParseExportModeError;

    fn from_str(s: &str) -> Result<ExportMode, ParseExportModeError> {
        ExportMode::ALL_MODES
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| ParseExportModeError {
                value: s.to_owned(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(mode: ExportMode) -> Vec<String> {
        ["foobar", "cody.foobar", "cody"]
            .into_iter()
            .map(|feature| Event {
                id: feature.to_owned(),
                feature: feature.to_owned(),
                action: "action".into(),
                ..Default::default()
            })
            .filter(|e| mode.should_queue(e))
            .map(|e| e.id)
            .collect()
    }

    #[test]
    fn disabled_queues_nothing() {
        assert!(queued(ExportMode::Disabled).is_empty());
    }

    #[test]
    fn all_queues_every_event() {
        assert_eq!(queued(ExportMode::All), ["foobar", "cody.foobar", "cody"]);
    }

    #[test]
    fn cody_only_queues_only_the_two_cody_events() {
        assert_eq!(queued(ExportMode::CodyOnly), ["cody.foobar", "cody"]);
    }

    #[test]
    fn cody_only_does_not_match_a_mere_cody_prefix() {
        let e = Event {
            feature: "codyish".into(),
            ..Default::default()
        };
        assert!(!ExportMode::CodyOnly.should_queue(&e));
    }

    #[test]
    fn modes_parse_from_and_print_as_their_spellings() {
        for mode in ExportMode::ALL_MODES {
            assert_eq!(mode.to_string().parse::<ExportMode>(), Ok(mode));
        }
        assert_eq!(ExportMode::default(), ExportMode::All);
    }

    #[test]
    fn unknown_mode_error_lists_the_choices() {
        let err = "cody".parse::<ExportMode>().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"invalid export mode "cody": expected one of all, cody-only, disabled"#
        );
    }

    #[test]
    fn modes_deserialize_from_their_spellings() {
        let got: Vec<ExportMode> =
            serde_json::from_str(r#"["all", "cody-only", "disabled"]"#).unwrap();
        assert_eq!(got, ExportMode::ALL_MODES);
    }
}
