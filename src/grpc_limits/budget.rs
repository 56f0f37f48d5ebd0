//! The decode budget: one per server, shared by every call, counting the
//! bytes of gRPC messages being received, decoded or held.
//!
//! A [`Reservation`] is taken from the budget when a message's header
//! declares its length (before its bytes arrive, see [`super::body`]), and
//! gives its bytes back when dropped. The calls hand the reservation of each
//! message they keep to the task that works on it ([`MessageReservations`]),
//! so a payload stays counted until it is answered.
//!
//! A reservation that does not fit is refused with
//! [`BudgetExceeded`], which becomes `RESOURCE_EXHAUSTED` naming the budget
//! and its setting. The bytes in use are a gauge, the refusals a counter,
//! under names the server chooses ([`BudgetNames`]).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Default budget: 256 MiB of message bytes per server.
pub const DEFAULT_DECODE_BUDGET_BYTES: u64 = 256 * 1024 * 1024;

/// What a budget is called: its setting (for error messages) and its
/// metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BudgetNames {
    /// The setting, as operators write it, e.g. `--decode-budget
    /// (TELESPOOL_DECODE_BUDGET)`.
    pub setting: &'static str,
    /// Gauge of the bytes in use.
    pub in_use_gauge: &'static str,
    /// Counter of refused reservations.
    pub refused_counter: &'static str,
}

/// The sidecar's names.
pub const SIDECAR_BUDGET: BudgetNames = BudgetNames {
    setting: "--decode-budget (TELESPOOL_DECODE_BUDGET)",
    in_use_gauge: "telespool_grpc_decode_budget_bytes_in_use",
    refused_counter: "telespool_grpc_decode_budget_refused_total",
};

/// The gateway's names.
pub const GATEWAY_BUDGET: BudgetNames = BudgetNames {
    setting: "--decode-budget (TELESPOOL_GATEWAY_DECODE_BUDGET)",
    in_use_gauge: "telespool_gateway_decode_budget_bytes_in_use",
    refused_counter: "telespool_gateway_decode_budget_refused_total",
};

/// A reservation that did not fit in the budget.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "decode budget exhausted: this message needs {wanted} more bytes, {in_use} of the {limit} bytes of {setting} are held by messages being received or processed; retry later"
)]
pub struct BudgetExceeded {
    /// Bytes asked for.
    pub wanted: u64,
    /// Bytes in use when it was asked.
    pub in_use: u64,
    /// The budget.
    pub limit: u64,
    /// The budget's setting.
    pub setting: &'static str,
}

impl BudgetExceeded {
    /// The gRPC status: `RESOURCE_EXHAUSTED` with this message.
    pub fn to_status(&self) -> tonic::Status {
        tonic::Status::resource_exhausted(self.to_string())
    }
}

/// A server's budget of message bytes.
#[derive(Debug)]
pub struct DecodeBudget {
    limit: u64,
    in_use: AtomicU64,
    names: BudgetNames,
}

impl DecodeBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64, names: BudgetNames) -> Arc<DecodeBudget> {
        metrics::describe_gauge!(
            names.in_use_gauge,
            metrics::Unit::Bytes,
            "Bytes of gRPC messages being received, decoded or held (the decode budget in use)"
        );
        metrics::describe_counter!(
            names.refused_counter,
            "gRPC messages refused with RESOURCE_EXHAUSTED because the decode budget was full"
        );
        // Registered at start, so a scrape sees them before the first call
        // (by a change of zero: budgets started in one process share them).
        metrics::gauge!(names.in_use_gauge).increment(0.0);
        metrics::counter!(names.refused_counter).increment(0);
        Arc::new(DecodeBudget {
            limit,
            in_use: AtomicU64::new(0),
            names,
        })
    }

    /// The budget in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes reserved now.
    pub fn in_use(&self) -> u64 {
        self.in_use.load(Ordering::Acquire)
    }

    /// The budget's names.
    pub fn names(&self) -> BudgetNames {
        self.names
    }

    /// Reserves `bytes`, or refuses (and counts the refusal) if they do not
    /// fit.
    pub fn try_reserve(self: &Arc<Self>, bytes: u64) -> Result<Reservation, BudgetExceeded> {
        self.take(bytes)?;
        Ok(Reservation {
            budget: self.clone(),
            bytes,
        })
    }

    fn take(&self, bytes: u64) -> Result<(), BudgetExceeded> {
        let mut current = self.in_use.load(Ordering::Acquire);
        loop {
            let next = current.saturating_add(bytes);
            if next > self.limit {
                metrics::counter!(self.names.refused_counter).increment(1);
                return Err(BudgetExceeded {
                    wanted: bytes,
                    in_use: current,
                    limit: self.limit,
                    setting: self.names.setting,
                });
            }
            match self.in_use.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    metrics::gauge!(self.names.in_use_gauge).increment(bytes as f64);
                    return Ok(());
                }
                Err(actual) => current = actual,
            }
        }
    }

    fn give_back(&self, bytes: u64) {
        if bytes > 0 {
            self.in_use.fetch_sub(bytes, Ordering::AcqRel);
            metrics::gauge!(self.names.in_use_gauge).decrement(bytes as f64);
        }
    }
}

/// Bytes held in a [`DecodeBudget`] until dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<DecodeBudget>,
    bytes: u64,
}

impl Reservation {
    /// Bytes held.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Holds `bytes` from now on: more if the budget allows (else an error
    /// and nothing changes), or fewer.
    pub fn try_resize(&mut self, bytes: u64) -> Result<(), BudgetExceeded> {
        if bytes > self.bytes {
            self.budget.take(bytes - self.bytes)?;
        } else {
            self.budget.give_back(self.bytes - bytes);
        }
        self.bytes = bytes;
        Ok(())
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.give_back(self.bytes);
    }
}

/// The reservations of one call's messages, in arrival order: the request
/// body pushes one per message header, the call takes one per message it
/// receives (see [`MessageReservations::next`]). It rides in the request's
/// extensions; whatever is left when the call and its body are gone is
/// given back.
#[derive(Clone, Debug, Default)]
pub struct MessageReservations(Arc<Mutex<VecDeque<Reservation>>>);

impl MessageReservations {
    /// The reservations of a call (an empty queue if the call did not come
    /// through a budgeted server, as in tests that call a service
    /// directly).
    pub fn of<T>(request: &tonic::Request<T>) -> MessageReservations {
        request
            .extensions()
            .get::<MessageReservations>()
            .cloned()
            .unwrap_or_default()
    }

    /// The reservation of the next message the call receives; hold it for
    /// as long as the message (or what was decoded from it) is kept.
    pub fn next(&self) -> Option<Reservation> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }

    pub(crate) fn push(&self, reservation: Reservation) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(reservation);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: BudgetNames = BudgetNames {
        setting: "--test-budget",
        in_use_gauge: "test_budget_in_use",
        refused_counter: "test_budget_refused_total",
    };

    #[test]
    fn reservations_past_the_budget_are_refused_naming_it_and_dropping_gives_bytes_back() {
        let budget = DecodeBudget::new(100, NAMES);
        let a = budget.try_reserve(60).unwrap();
        let err = budget.try_reserve(41).unwrap_err();
        assert_eq!(
            (err.wanted, err.in_use, err.limit, err.setting),
            (41, 60, 100, "--test-budget")
        );
        let status = err.to_status();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("--test-budget"), "{status:?}");
        let b = budget.try_reserve(40).unwrap();
        assert_eq!(budget.in_use(), 100);
        drop(a);
        assert_eq!(budget.in_use(), 40);
        drop(b);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn a_reservation_grows_within_the_budget_and_shrinks() {
        let budget = DecodeBudget::new(100, NAMES);
        let mut r = budget.try_reserve(10).unwrap();
        r.try_resize(90).unwrap();
        assert_eq!(budget.in_use(), 90);
        assert!(r.try_resize(101).is_err());
        assert_eq!((r.bytes(), budget.in_use()), (90, 90));
        r.try_resize(5).unwrap();
        assert_eq!(budget.in_use(), 5);
        drop(r);
        assert_eq!(budget.in_use(), 0);
    }

    #[test]
    fn message_reservations_come_out_in_arrival_order_and_leftovers_are_given_back() {
        let budget = DecodeBudget::new(100, NAMES);
        let queue = MessageReservations::default();
        queue.push(budget.try_reserve(1).unwrap());
        queue.push(budget.try_reserve(2).unwrap());
        queue.push(budget.try_reserve(3).unwrap());
        assert_eq!(queue.next().map(|r| r.bytes()), Some(1));
        assert_eq!(budget.in_use(), 5);
        drop(queue);
        assert_eq!(budget.in_use(), 0);
    }
}
