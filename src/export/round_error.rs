//! Why an export round ends early, and how a failed stream is classified:
//! by its gRPC code and where the stream was, never by its message's text.

use std::time::Duration;

/// Why a round ended early. Every variant ends the round; the exporter
/// retries after a backoff (a graceful `GOAWAY`, [`RoundError::is_goaway`],
/// at once), so no record is lost. The variants differ in what they tell
/// the operator, through the log line and the `kind` label of
/// `telespool_export_errors_total`.
#[derive(Debug, thiserror::Error)]
pub(super) enum RoundError {
    /// The channel could not reach the gateway before the stream opened
    /// (DNS, TCP, TLS, or a `GOAWAY` on a new connection). The operator
    /// checks the address, the network and the certificates.
    #[error("connecting to the gateway failed: {0}")]
    Connect(#[source] tonic::transport::Error),
    /// Opening the stream failed without an answer from the gateway
    /// (`UNAVAILABLE`, or a client-side failure). Transient: retried.
    #[error("opening the stream failed: {0}")]
    Open(#[source] tonic::Status),
    /// The gateway refused the stream (`INVALID_ARGUMENT`,
    /// `UNAUTHENTICATED`, `PERMISSION_DENIED`, `UNIMPLEMENTED`): retries
    /// fail the same way until the operator fixes the identity, license or
    /// gateway version.
    #[error("the gateway refused the stream: {0}")]
    Refused(#[source] tonic::Status),
    /// The stream failed after it opened, or the gateway answered its
    /// opening with another error. Transient: retried.
    #[error("the stream broke: {0}")]
    Stream(#[source] tonic::Status),
    /// The gateway ended the stream before answering every payload; the
    /// unanswered ones are sent again.
    #[error("the gateway closed the stream with {0} payloads unanswered")]
    ClosedEarly(usize),
    /// The gateway answered nothing within the time given; the payloads
    /// in flight are sent again. A slow gateway or sink shows here.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The gateway answered a payload with no ids at all: its sink is
    /// probably down. Not counted as an attempt against the records.
    #[error("the gateway answered a payload with no ids (its sink may be down)")]
    NothingAcked,
    /// Reading the queue failed (damage, I/O). The operator runs `telespool
    /// verify` and looks at the disk.
    #[error("reading the queue failed: {0}")]
    Queue(#[source] crate::queue::QueueError),
    /// Storing refused events in the dead-letter store failed: they stay in
    /// the queue, unresolved, and are retried. The operator looks at the
    /// disk.
    #[error("the dead-letter store failed: {0}")]
    DeadLetter(#[source] crate::dead_letter::DeadLetterError),
    /// A blocking task (a queue read, a dead-letter write) panicked or was
    /// cancelled by the runtime shutting down. A panic is a bug: the
    /// operator reports it with the log.
    #[error("a blocking export task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
    /// The gateway's connection went away gracefully (`GOAWAY`,
    /// `NO_ERROR`) as the stream opened: the stream was never processed.
    /// Retried at once on a new connection.
    #[error("the gateway connection went away (GOAWAY, NO_ERROR) as the stream opened: {0}")]
    GoAway(#[source] tonic::Status),
}

impl RoundError {
    /// Whether the gateway went away gracefully (`GOAWAY` with `NO_ERROR`)
    /// as the stream opened: a reconnect, not a failure.
    pub(super) fn is_goaway(&self) -> bool {
        match self {
            RoundError::GoAway(_) => true,
            RoundError::Connect(e) => goaway_no_error(e),
            _ => false,
        }
    }

    pub(super) fn kind(&self) -> &'static str {
        if self.is_goaway() {
            return "goaway";
        }
        match self {
            RoundError::Connect(_) | RoundError::Open(_) => "connect",
            RoundError::Refused(_) => "refused",
            RoundError::Stream(_) | RoundError::ClosedEarly(_) => "stream",
            RoundError::Timeout(_) => "timeout",
            RoundError::NothingAcked => "nothing_acked",
            RoundError::Queue(_) => "queue",
            RoundError::DeadLetter(_) => "dead_letter",
            RoundError::Task(_) => "task",
            RoundError::GoAway(_) => "goaway",
        }
    }
}

/// Where a stream was when it failed: [`classify`] tells a stream that
/// never opened from one that broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    /// Waiting for the gateway to accept the stream.
    Opening,
    /// The stream was open.
    Streaming,
}

/// Whether `error` or one of its sources is h2's graceful `GOAWAY` from
/// the gateway (`NO_ERROR`, remote).
fn goaway_no_error(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(h2) = e.downcast_ref::<h2::Error>()
            && h2.is_go_away()
            && h2.is_remote()
            && h2.reason() == Some(h2::Reason::NO_ERROR)
        {
            return true;
        }
        next = e.source();
    }
    false
}

/// A failed stream's error, by its gRPC code and where the stream was (not
/// by its message's text). Tonic reports a channel that cannot connect as
/// `UNAVAILABLE`, and a client-side failure it cannot name as `UNKNOWN`
/// with the failure as its source; a status the gateway sent has no
/// source.
pub(super) fn classify(s: tonic::Status, phase: Phase) -> RoundError {
    use std::error::Error;
    use tonic::Code;
    if goaway_no_error(&s) {
        return RoundError::GoAway(s);
    }
    match (s.code(), phase) {
        (
            Code::InvalidArgument
            | Code::Unauthenticated
            | Code::PermissionDenied
            | Code::Unimplemented,
            _,
        ) => RoundError::Refused(s),
        (Code::Unavailable, Phase::Opening) => RoundError::Open(s),
        (Code::Unknown, Phase::Opening) if s.source().is_some() => RoundError::Open(s),
        _ => RoundError::Stream(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_code_is_a_refusal_whether_the_stream_opened_or_not() {
        for phase in [Phase::Opening, Phase::Streaming] {
            for s in [
                tonic::Status::invalid_argument("bad identifier"),
                tonic::Status::unauthenticated("no"),
                tonic::Status::permission_denied("no"),
                tonic::Status::unimplemented("old gateway"),
            ] {
                let e = classify(s, phase);
                assert!(matches!(e, RoundError::Refused(_)), "{phase:?}: {e}");
                assert_eq!(e.kind(), "refused");
            }
        }
    }

    #[test]
    fn unavailable_while_opening_is_a_connect_failure_and_later_a_broken_stream() {
        let e = classify(
            tonic::Status::unavailable("anything at all"),
            Phase::Opening,
        );
        assert!(matches!(e, RoundError::Open(_)), "{e}");
        assert_eq!(e.kind(), "connect");
        let e = classify(
            tonic::Status::unavailable("connect error"),
            Phase::Streaming,
        );
        assert!(matches!(e, RoundError::Stream(_)), "{e}");
        assert_eq!(e.kind(), "stream");
    }

    #[test]
    fn unknown_from_the_gateway_is_a_broken_stream_and_from_the_client_a_connect_failure() {
        let answered = classify(tonic::Status::unknown("transport connect"), Phase::Opening);
        assert!(
            matches!(answered, RoundError::Stream(_)),
            "the text does not decide: {answered}"
        );
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let local = tonic::Status::from_error(Box::new(io));
        assert_eq!(local.code(), tonic::Code::Unknown);
        let e = classify(local, Phase::Opening);
        assert!(matches!(e, RoundError::Open(_)), "{e}");
    }

    #[test]
    fn a_round_error_keeps_its_cause() {
        use std::error::Error;
        let e = classify(tonic::Status::unavailable("down"), Phase::Opening);
        let source = e.source().expect("the status is the source");
        assert!(source.downcast_ref::<tonic::Status>().is_some());
        assert!(!RoundError::NothingAcked.is_goaway());
    }
}
