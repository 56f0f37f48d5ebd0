//! The file-descriptor limit: raised from the soft to the hard
//! `RLIMIT_NOFILE` at start (the soft limit is often 1,024, far below what
//! 20,000 connections need; raising it to the hard limit needs no
//! privilege), and logged against the connection limits.

use super::limits::ListenerLimits;

/// Descriptors the process needs besides its connections (segment files,
/// sled, the sink, the runtime, the listening sockets).
pub const RESERVED_FDS: u64 = 256;

/// The `RLIMIT_NOFILE` values at start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Nofile {
    /// The soft limit found.
    pub before: u64,
    /// The soft limit now.
    pub soft: u64,
    /// The hard limit.
    pub hard: u64,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit. `None` where the
/// platform has no such limit or the calls failed (logged).
pub fn raise_nofile() -> Option<Nofile> {
    #[cfg(unix)]
    {
        let (before, hard) = match rlimit::getrlimit(rlimit::Resource::NOFILE) {
            Ok(limits) => limits,
            Err(e) => {
                tracing::warn!(error = %e, "reading RLIMIT_NOFILE failed");
                return None;
            }
        };
        let soft = match rlimit::increase_nofile_limit(u64::MAX) {
            Ok(soft) => soft,
            Err(e) => {
                tracing::warn!(error = %e, soft = before, hard, "raising the soft RLIMIT_NOFILE failed");
                before
            }
        };
        Some(Nofile { before, soft, hard })
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Raises the soft `RLIMIT_NOFILE` and logs it against the connection
/// limit of `listeners` listeners of `server`; warns when they could use
/// more descriptors than the soft limit allows (the accept loop then backs
/// off on `EMFILE` instead of failing, but connections wait).
pub fn prepare(server: &'static str, limits: &ListenerLimits, listeners: u64) -> Option<Nofile> {
    let nofile = raise_nofile()?;
    let needed = (limits.max_connections as u64)
        .saturating_mul(listeners)
        .saturating_add(RESERVED_FDS);
    if needed > nofile.soft {
        tracing::warn!(
            server,
            soft = nofile.soft,
            hard = nofile.hard,
            max_connections = limits.max_connections,
            listeners,
            needed,
            "RLIMIT_NOFILE is below what max_connections may use: lower max_connections or raise the hard limit (ulimit -Hn, LimitNOFILE=)"
        );
    } else {
        tracing::info!(
            server,
            soft = nofile.soft,
            raised_from = nofile.before,
            hard = nofile.hard,
            max_connections = limits.max_connections,
            listeners,
            "file descriptors"
        );
    }
    Some(nofile)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_limit() {
        let nofile = raise_nofile().unwrap();
        assert!(nofile.soft >= nofile.before);
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert_eq!((soft, hard), (nofile.soft, nofile.hard));
    }
}
