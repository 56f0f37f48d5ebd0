//! The request body of a budgeted call: reads the gRPC framing as the data
//! arrives, charges each message to the decode budget before its bytes are
//! buffered, and inflates gzip messages itself, with a cap.
//!
//! ```text
//! gRPC message frame: [flag: u8][length: u32 BE][message: length bytes]
//!                      0 = plain, 1 = compressed (grpc-encoding)
//!
//! header read ─ length > max message size ─────────→ passed on: tonic answers OUT_OF_RANGE
//!             ─ reserve(length) refused ───────────→ body error: RESOURCE_EXHAUSTED (budget)
//!             ─ plain:      reservation queued for the call, bytes passed on untouched
//!             ─ compressed: bytes held here (reserved), inflated in steps, each step
//!                           reserved first, at most max message size; the frame is
//!                           rewritten as plain, its reservation queued for the call
//! ```
//!
//! Tonic buffers a message until it is complete (it reserves the declared
//! length as soon as it reads the header), so the reservation is taken when
//! the header goes by, before tonic sees it: a refused message never gets
//! a buffer. A refusal ends the body with a [`tonic::Status`], which tonic
//! hands to the call as the next message's error; bytes of earlier messages
//! in the same data frame are passed on first, so those messages are still
//! delivered and answered.
//!
//! Tonic bounds inflation by itself (its output buffer is limited to the
//! max message size, `RESOURCE_EXHAUSTED` past it), but its 16 MiB of
//! inflated bytes would be invisible to the budget: inflating here makes
//! them visible, and tonic only ever sees plain frames.

use std::cmp::min;
use std::collections::VecDeque;
use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use http_body::{Body, Frame};
use tonic::Status;

use super::budget::{DecodeBudget, MessageReservations, Reservation};

/// gRPC's message header: flag and length.
const HEADER: usize = 5;
/// Inflated bytes reserved and produced per step.
const INFLATE_STEP: usize = 256 * 1024;

/// What tonic says of a stream that ends inside a message.
const UNEXPECTED_EOF: &str = "Unexpected EOF decoding stream.";

enum State {
    /// Reading a message header. `withheld`: a compressed message, whose
    /// bytes are kept here until inflated.
    Header {
        bytes: [u8; HEADER],
        have: usize,
        withheld: bool,
    },
    /// Passing `left` bytes of a plain message on.
    Pass { left: usize },
    /// Collecting a compressed message.
    Compressed {
        need: usize,
        data: BytesMut,
        reservation: Reservation,
    },
    /// Refused: nothing more is read.
    Stopped,
}

impl State {
    fn header() -> State {
        State::Header {
            bytes: [0; HEADER],
            have: 0,
            withheld: false,
        }
    }

    fn withholding(&self) -> bool {
        matches!(
            self,
            State::Header { withheld: true, .. } | State::Compressed { .. }
        )
    }
}

/// A request body charged to a [`DecodeBudget`] (see the module docs).
pub struct BudgetBody {
    inner: tonic::body::Body,
    budget: Arc<DecodeBudget>,
    held: MessageReservations,
    max_message: usize,
    inflate: bool,
    state: State,
    out: VecDeque<Bytes>,
    error: Option<Status>,
    done: bool,
}

impl std::fmt::Debug for BudgetBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetBody")
            .field("max_message", &self.max_message)
            .field("inflate", &self.inflate)
            .field("done", &self.done)
            .finish()
    }
}

impl BudgetBody {
    /// Wraps `inner`: each message is reserved from `budget` and its
    /// reservation queued in `held`; messages over `max_message` bytes are
    /// left to tonic's limit; with `inflate`, gzip messages are inflated
    /// here (at most `max_message` bytes each).
    pub fn new(
        inner: tonic::body::Body,
        budget: Arc<DecodeBudget>,
        held: MessageReservations,
        max_message: usize,
        inflate: bool,
    ) -> BudgetBody {
        BudgetBody {
            inner,
            budget,
            held,
            max_message,
            inflate,
            state: State::header(),
            out: VecDeque::new(),
            error: None,
            done: false,
        }
    }

    fn refuse(&mut self, status: Status) {
        tracing::debug!(code = ?status.code(), message = status.message(), "gRPC message refused before decoding");
        self.state = State::Stopped;
        self.error = Some(status);
    }

    fn emit(&mut self, data: &Bytes, from: usize, to: usize) {
        if from < to {
            self.out.push_back(data.slice(from..to));
        }
    }

    /// Reads the framing of one data chunk, queueing what tonic gets.
    fn scan(&mut self, data: Bytes) {
        let n = data.len();
        let mut i = 0;
        // Start of the bytes to pass on, while not withholding.
        let mut pass_from = (!self.state.withholding()).then_some(0);
        while i < n {
            match std::mem::replace(&mut self.state, State::Stopped) {
                State::Stopped => return,
                State::Pass { left } => {
                    let take = min(left, n - i);
                    i += take;
                    self.state = if take == left {
                        State::header()
                    } else {
                        State::Pass { left: left - take }
                    };
                }
                State::Header {
                    mut bytes,
                    mut have,
                    mut withheld,
                } => {
                    let header_start = (have == 0).then_some(i);
                    if have == 0 && self.inflate && data.get(i) == Some(&1) {
                        withheld = true;
                        if let Some(p) = pass_from.take() {
                            self.emit(&data, p, i);
                        }
                    }
                    let take = min(HEADER - have, n - i);
                    if let (Some(to), Some(from)) =
                        (bytes.get_mut(have..have + take), data.get(i..i + take))
                    {
                        to.copy_from_slice(from);
                    }
                    have += take;
                    i += take;
                    if have < HEADER {
                        self.state = State::Header {
                            bytes,
                            have,
                            withheld,
                        };
                        continue;
                    }
                    let [_, a, b, c, d] = bytes;
                    let len = u32::from_be_bytes([a, b, c, d]) as usize;
                    if len > self.max_message {
                        // Tonic refuses it with OUT_OF_RANGE, naming the
                        // limit, as soon as it reads the header.
                        if withheld {
                            self.out.push_back(Bytes::copy_from_slice(&bytes));
                            pass_from = Some(i);
                        }
                        self.state = State::Pass { left: len };
                        continue;
                    }
                    let reservation = match self.budget.try_reserve(len as u64) {
                        Ok(r) => r,
                        Err(e) => {
                            // Pass on what precedes this header (earlier
                            // messages are still delivered), not the header.
                            if let Some(p) = pass_from {
                                self.emit(&data, p, header_start.unwrap_or(p));
                            }
                            self.refuse(e.to_status());
                            return;
                        }
                    };
                    if !withheld {
                        self.held.push(reservation);
                        self.state = if len == 0 {
                            State::header()
                        } else {
                            State::Pass { left: len }
                        };
                        continue;
                    }
                    self.state = State::Compressed {
                        need: len,
                        data: BytesMut::with_capacity(len),
                        reservation,
                    };
                    if len == 0 && !self.complete(&mut pass_from, i) {
                        return;
                    }
                }
                State::Compressed {
                    need,
                    data: mut buf,
                    reservation,
                } => {
                    let take = min(need - buf.len(), n - i);
                    if let Some(from) = data.get(i..i + take) {
                        buf.extend_from_slice(from);
                    }
                    i += take;
                    let full = buf.len() == need;
                    self.state = State::Compressed {
                        need,
                        data: buf,
                        reservation,
                    };
                    if full && !self.complete(&mut pass_from, i) {
                        return;
                    }
                }
            }
        }
        if let Some(p) = pass_from {
            self.emit(&data, p, n);
        }
    }

    /// Inflates the compressed message just collected and queues it as a
    /// plain frame. False if it was refused.
    fn complete(&mut self, pass_from: &mut Option<usize>, i: usize) -> bool {
        let State::Compressed {
            data, reservation, ..
        } = std::mem::replace(&mut self.state, State::header())
        else {
            return true;
        };
        let mut reservation = reservation;
        match inflate(&data, &mut reservation, self.max_message) {
            Ok(frame) => {
                self.out.extend(frame);
                self.held.push(reservation);
                *pass_from = Some(i);
                true
            }
            Err(status) => {
                self.refuse(status);
                false
            }
        }
    }
}

/// Inflates a gzip message into a plain gRPC frame (its header, then the
/// message in chunks of [`INFLATE_STEP`] bytes: no buffer is ever copied to
/// grow, and tonic frees the chunks as it copies them into its own), at most
/// `max` message bytes, charging `reservation` before each step; on success
/// the reservation holds the frame's size.
fn inflate(
    compressed: &[u8],
    reservation: &mut Reservation,
    max: usize,
) -> Result<Vec<Bytes>, Status> {
    let mut decoder = flate2::read::GzDecoder::new(compressed);
    let mut chunks = vec![Bytes::new()];
    let mut inflated = 0usize;
    loop {
        if inflated > max {
            return Err(Status::resource_exhausted(format!(
                "gzip message inflates past {max} bytes, the largest message accepted"
            )));
        }
        // Read at most one byte past the limit, to see it is passed.
        let room = min(INFLATE_STEP, max + 1 - inflated);
        reservation
            .try_resize((compressed.len() + HEADER + inflated + room) as u64)
            .map_err(|e| e.to_status())?;
        let mut chunk = vec![0u8; room];
        let mut filled = 0;
        while filled < room {
            let read = decoder
                .read(chunk.get_mut(filled..).unwrap_or_default())
                .map_err(|e| {
                    Status::internal(format!("Error decompressing: {e}, while sending request"))
                })?;
            if read == 0 {
                break;
            }
            filled += read;
        }
        chunk.truncate(filled);
        inflated += filled;
        if filled == 0 {
            break;
        }
        chunks.push(Bytes::from(chunk));
        if filled < room {
            break;
        }
    }
    if inflated > max {
        return Err(Status::resource_exhausted(format!(
            "gzip message inflates past {max} bytes, the largest message accepted"
        )));
    }
    let mut header = [0u8; HEADER];
    header[1..].copy_from_slice(&(inflated as u32).to_be_bytes());
    if let Some(first) = chunks.first_mut() {
        *first = Bytes::copy_from_slice(&header);
    }
    // Shrinking never fails.
    let _ = reservation.try_resize((HEADER + inflated) as u64);
    Ok(chunks)
}

impl Body for BudgetBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        loop {
            if let Some(data) = this.out.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            if let Some(error) = this.error.take() {
                this.done = true;
                return Poll::Ready(Some(Err(error)));
            }
            if this.done {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                None => {
                    this.done = true;
                    if this.state.withholding() {
                        this.error = Some(Status::internal(UNEXPECTED_EOF));
                    }
                }
                Some(Err(error)) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(error)));
                }
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.scan(data),
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done && self.out.is_empty() && self.error.is_none()
    }
}

#[cfg(test)]
mod tests;
