//! `telespool serve`.

use super::CmdError;
use crate::cli::ServeArgs;
use crate::config::ServeConfig;
use std::process::ExitCode;

/// Resolves the configuration and runs the sidecar until SIGTERM or ctrl-c.
pub fn run(args: &ServeArgs) -> Result<ExitCode, CmdError> {
    let config = ServeConfig::resolve(args).map_err(|e| CmdError {
        message: e.to_string(),
        code: super::EXIT_CONFIG,
    })?;
    crate::app::serve(config).map_err(|e| CmdError::new(e.to_string()))?;
    Ok(ExitCode::SUCCESS)
}
