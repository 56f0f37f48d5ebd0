//! `telespool config check serve|gateway [--json] [--config FILE] [FLAGS]`:
//! resolves the command's settings exactly as `telespool serve` or
//! `telespool gateway` would (flags > environment > config file >
//! defaults) and validates them, without opening anything else; prints
//! every effective setting with its value (secrets masked: `admin_token`,
//! `license_key`, the userinfo of URLs; secret files show their path) and
//! where it came from (`flag`, `env NAME`, `file PATH`, `default`). Exits 0
//! when valid, [`EXIT_CONFIG`] with the error (naming the setting, its
//! flag, environment variable and origin) when not.

use std::io::Write as _;
use std::process::ExitCode;

use super::{CmdError, EXIT_CONFIG};
use crate::cli::{CheckTarget, ConfigArgs, ConfigCommand};
use crate::config::ServeConfig;
use crate::gateway::GatewayConfig;
use crate::settings::{ConfigError, Report};

/// Runs `telespool config ...`.
pub fn run(args: &ConfigArgs) -> Result<ExitCode, CmdError> {
    let ConfigCommand::Check(check) = &args.command;
    let (command, result): (&str, Result<Report, ConfigError>) = match &check.target {
        CheckTarget::Serve(a) => (
            "serve",
            ServeConfig::resolve_with_origins(a).map(|(_, r)| r.report()),
        ),
        CheckTarget::Gateway(a) => (
            "gateway",
            GatewayConfig::resolve_with_origins(a).map(|(_, r)| r.report()),
        ),
    };
    // A closed stdout (`| head`) is not an error of the configuration.
    let mut out = std::io::stdout().lock();
    match (result, check.json) {
        (Ok(report), false) => {
            let _ = write!(out, "{}", report.text());
        }
        (Ok(report), true) => {
            let _ = writeln!(out, "{}", report.json());
        }
        (Err(e), json) => {
            if json {
                let setting = e.setting().map(|s| s.key.clone());
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::json!({
                        "command": command,
                        "valid": false,
                        "setting": setting,
                        "error": e.to_string(),
                    })
                );
            }
            return Err(CmdError {
                message: e.to_string(),
                code: EXIT_CONFIG,
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
