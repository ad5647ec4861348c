//! The per-invoice payment state machine: given what the invoice row stores and what a Stripe event
//! means for it, decide the new status and amounts.
//!
//! Stripe delivers events at least once and in no particular order, so the rules are written to
//! be safe under replays and reordering. Amounts are cumulative totals that only grow (a replayed
//! or older total never lowers them), a failure or pending event never downgrades `paid`,
//! `refunded` or `disputed`, and applying the same effect twice changes nothing the second time.
//! All amounts are integer minor units of the invoice's currency (cents, or whole yen for JPY),
//! compared as they are and never scaled. This module is pure: it does not read events, resolve
//! which invoice an event belongs to, deduplicate event ids or compare event `created` times.
//! Those are the caller's job.

use crate::domain::InvoiceStatus;

/// The payment columns of an invoice row. Amounts are in the currency's minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentState {
    pub status: InvoiceStatus,
    pub amount_due: i64,
    /// Total received across the invoice's distinct successful payments.
    pub amount_paid: i64,
    /// Total refunded across the invoice's charges.
    pub amount_refunded: i64,
    /// Whether a Stripe event confirmed the paid, refunded or disputed status, as opposed to the
    /// app setting it alone.
    pub confirmed_by_stripe: bool,
}

/// The meaning of one Stripe event for one invoice. Amounts are in the currency's minor unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentEffect {
    /// Total received across this invoice's distinct successful payments (the caller sums them).
    Paid { total_paid: i64 },
    /// A payment attempt failed (payment_intent.payment_failed, invoice.payment_failed, or
    /// checkout.session.async_payment_failed).
    Failed,
    /// A delayed payment method is on its way (checkout.session.completed with payment_status
    /// unpaid).
    Pending,
    /// Total refunded across the invoice's charges, cumulative as in a Charge's `amount_refunded`.
    /// Callers never add up refund deltas.
    Refunded { total_refunded: i64 },
    /// A charge for the invoice is disputed (charge.dispute.created).
    DisputeOpened,
    /// The dispute ended (charge.dispute.closed): `won` is true when the merchant kept the funds.
    DisputeClosed { won: bool },
}

/// The outcome of applying one effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub state: PaymentState,
    /// Whether `state` differs from the state the effect was applied to.
    pub changed: bool,
    /// The reason the state changed or did not, for the event record and logs.
    pub note: String,
}

/// Applies one effect to an invoice's payment state.
///
/// The rules, by effect:
/// - `Paid`: `amount_paid` becomes the larger of the stored and the new total. An `open` or
///   `payment_pending` invoice becomes `paid` once the total covers `amount_due` (or `refunded`
///   when the refund recorded earlier covers the whole payment), and `open` after a partial
///   payment. `void`, `refunded` and `disputed` keep their status but record the amount.
/// - `Failed`: `payment_pending` returns to `open`. Every other status is kept.
/// - `Pending`: `open` becomes `payment_pending`. Every other status is kept.
/// - `Refunded`: `amount_refunded` becomes the larger of the stored and the new total. When it
///   covers a non-zero `amount_paid`, an `open`, `payment_pending` or `paid` invoice becomes
///   `refunded`. After a partial refund the status is kept.
/// - `DisputeOpened`: `paid`, or `open` and `payment_pending` with a payment recorded, become
///   `disputed`.
/// - `DisputeClosed`: a lost dispute makes the invoice `refunded`. A won dispute returns it to
///   `paid` when the payments cover `amount_due`, otherwise to `open`. Both apply to `disputed`
///   invoices and to invoices with a payment whose dispute opening was never applied, while
///   `refunded` and `void` invoices keep their status.
///
/// `confirmed_by_stripe` becomes true when the status changes to `paid`, `refunded` or
/// `disputed`, and when a `Paid` effect whose own total covers `amount_due` finds the invoice
/// already marked `paid`. It never becomes false.
pub fn apply(state: &PaymentState, effect: &PaymentEffect) -> Transition {
    let (mut next, note) = match *effect {
        PaymentEffect::Paid { total_paid } => apply_paid(state, total_paid),
        PaymentEffect::Failed => apply_failed(state),
        PaymentEffect::Pending => apply_pending(state),
        PaymentEffect::Refunded { total_refunded } => apply_refunded(state, total_refunded),
        PaymentEffect::DisputeOpened => apply_dispute_opened(state),
        PaymentEffect::DisputeClosed { won } => apply_dispute_closed(state, won),
    };

    let entered_confirmed_status = next.status != state.status && is_settled_by_stripe(next.status);
    let payment_confirms_paid = match *effect {
        PaymentEffect::Paid { total_paid } => {
            next.status == InvoiceStatus::Paid && total_paid >= next.amount_due
        }
        _ => false,
    };
    if entered_confirmed_status || payment_confirms_paid {
        next.confirmed_by_stripe = true;
    }

    Transition {
        state: next,
        changed: next != *state,
        note,
    }
}

/// Returns true when the invoice was `open` before and is not after, so that its pending
/// reminders should be skipped. Only `open` invoices are reminded.
pub fn leaves_open(before: &PaymentState, after: &PaymentState) -> bool {
    before.status == InvoiceStatus::Open && after.status != InvoiceStatus::Open
}

fn apply_paid(state: &PaymentState, total_paid: i64) -> (PaymentState, String) {
    let mut next = *state;
    next.amount_paid = state.amount_paid.max(total_paid);
    let received = format!("{} of {} received", next.amount_paid, next.amount_due);

    match state.status {
        InvoiceStatus::Open | InvoiceStatus::PaymentPending => {
            let is_new_payment = next.amount_paid > state.amount_paid;
            let status = status_from_amounts(&next);
            if status == InvoiceStatus::Open && !is_new_payment {
                return (next, format!("no new payment: {received}"));
            }
            next.status = status;
            let note = match status {
                InvoiceStatus::Open => format!("partial payment: {received}, invoice stays open"),
                InvoiceStatus::Refunded => {
                    format!("payment already fully refunded: {received}, invoice refunded")
                }
                _ => format!("paid in full: {received}"),
            };
            (next, note)
        }
        InvoiceStatus::Paid => (next, format!("invoice already paid: {received}")),
        InvoiceStatus::Void => (
            next,
            format!("invoice is void: recorded the payment ({received}) and kept status void"),
        ),
        InvoiceStatus::Refunded | InvoiceStatus::Disputed => (
            next,
            format!(
                "kept status {}, which takes precedence over paid: {received}",
                state.status
            ),
        ),
    }
}

fn apply_failed(state: &PaymentState) -> (PaymentState, String) {
    let mut next = *state;

    let note = match state.status {
        InvoiceStatus::PaymentPending => {
            next.status = InvoiceStatus::Open;
            "payment attempt failed: delayed payment did not arrive, invoice open again".to_owned()
        }
        InvoiceStatus::Open => "payment attempt failed: invoice stays open".to_owned(),
        InvoiceStatus::Paid | InvoiceStatus::Refunded | InvoiceStatus::Disputed => {
            format!("ignored: invoice already {}", state.status)
        }
        InvoiceStatus::Void => "ignored: invoice is void".to_owned(),
    };
    (next, note)
}

fn apply_pending(state: &PaymentState) -> (PaymentState, String) {
    let mut next = *state;

    let note = match state.status {
        InvoiceStatus::Open => {
            next.status = InvoiceStatus::PaymentPending;
            "delayed payment on its way: invoice payment_pending".to_owned()
        }
        InvoiceStatus::PaymentPending => "ignored: payment already pending".to_owned(),
        InvoiceStatus::Void => "ignored: invoice is void".to_owned(),
        InvoiceStatus::Paid | InvoiceStatus::Refunded | InvoiceStatus::Disputed => {
            format!("ignored: invoice already {}", state.status)
        }
    };
    (next, note)
}

fn apply_refunded(state: &PaymentState, total_refunded: i64) -> (PaymentState, String) {
    let mut next = *state;
    next.amount_refunded = state.amount_refunded.max(total_refunded);
    let refunded = format!(
        "{} of {} paid refunded",
        next.amount_refunded, next.amount_paid
    );

    match state.status {
        InvoiceStatus::Open | InvoiceStatus::PaymentPending | InvoiceStatus::Paid => {
            if is_fully_refunded(&next) {
                next.status = InvoiceStatus::Refunded;
                (next, format!("full refund: {refunded}"))
            } else {
                let note = format!("partial refund: {refunded}, invoice stays {}", state.status);
                (next, note)
            }
        }
        InvoiceStatus::Refunded => (next, format!("invoice already refunded: {refunded}")),
        InvoiceStatus::Disputed => (
            next,
            format!("kept status disputed until the dispute closes: {refunded}"),
        ),
        InvoiceStatus::Void => (
            next,
            format!("invoice is void: recorded the refund ({refunded}) and kept status void"),
        ),
    }
}

fn apply_dispute_opened(state: &PaymentState) -> (PaymentState, String) {
    let mut next = *state;

    let note = match state.status {
        InvoiceStatus::Paid => {
            next.status = InvoiceStatus::Disputed;
            "dispute opened: invoice disputed".to_owned()
        }
        InvoiceStatus::Open | InvoiceStatus::PaymentPending if state.amount_paid > 0 => {
            next.status = InvoiceStatus::Disputed;
            format!(
                "dispute opened on a partial payment ({} of {} received): invoice disputed",
                state.amount_paid, state.amount_due
            )
        }
        // NOTE: a dispute needs a charge, so this means the payment event has not been applied
        // yet. The invoice stays remindable until the caller re-fetches or replays the dispute.
        InvoiceStatus::Open | InvoiceStatus::PaymentPending => {
            "ignored: dispute opened but no payment is recorded for this invoice".to_owned()
        }
        InvoiceStatus::Disputed => "ignored: invoice already disputed".to_owned(),
        InvoiceStatus::Refunded => "ignored: invoice already refunded".to_owned(),
        InvoiceStatus::Void => "ignored: invoice is void".to_owned(),
    };
    (next, note)
}

fn apply_dispute_closed(state: &PaymentState, won: bool) -> (PaymentState, String) {
    let mut next = *state;
    let outcome = if won { "won" } else { "lost" };

    let applies = match state.status {
        InvoiceStatus::Disputed => true,
        InvoiceStatus::Paid | InvoiceStatus::Open | InvoiceStatus::PaymentPending => {
            state.amount_paid > 0
        }
        InvoiceStatus::Refunded | InvoiceStatus::Void => false,
    };
    if !applies {
        let reason = match state.status {
            InvoiceStatus::Refunded => "invoice already refunded".to_owned(),
            InvoiceStatus::Void => "invoice is void".to_owned(),
            _ => "no payment is recorded for this invoice".to_owned(),
        };
        return (next, format!("ignored: dispute {outcome} but {reason}"));
    }

    // A won dispute on a paid invoice keeps it paid even when the recorded amounts fall short,
    // because the app may have marked it paid itself.
    next.status = match (won, state.status) {
        (false, _) => InvoiceStatus::Refunded,
        (true, InvoiceStatus::Paid) => InvoiceStatus::Paid,
        (true, _) => status_from_amounts(&next),
    };
    let note = format!(
        "dispute {outcome}: invoice {} ({} of {} received)",
        next.status, next.amount_paid, next.amount_due
    );
    (next, note)
}

/// Derives the status from the amounts alone: `refunded` when the refunds cover a non-zero
/// payment, `paid` when the payments cover the amount due, and `open` otherwise.
fn status_from_amounts(state: &PaymentState) -> InvoiceStatus {
    if is_fully_refunded(state) {
        InvoiceStatus::Refunded
    } else if state.amount_paid >= state.amount_due {
        InvoiceStatus::Paid
    } else {
        InvoiceStatus::Open
    }
}

fn is_fully_refunded(state: &PaymentState) -> bool {
    state.amount_paid > 0 && state.amount_refunded >= state.amount_paid
}

/// Statuses whose arrival from a Stripe effect sets `confirmed_by_stripe`.
fn is_settled_by_stripe(status: InvoiceStatus) -> bool {
    matches!(
        status,
        InvoiceStatus::Paid | InvoiceStatus::Refunded | InvoiceStatus::Disputed
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use InvoiceStatus::{Disputed, Open, Paid, PaymentPending, Refunded, Void};

    fn invoice(
        status: InvoiceStatus,
        amount_due: i64,
        amount_paid: i64,
        amount_refunded: i64,
    ) -> PaymentState {
        PaymentState {
            status,
            amount_due,
            amount_paid,
            amount_refunded,
            confirmed_by_stripe: false,
        }
    }

    /// One row of a rule table: the state before, the effect, and the expected status and amounts
    /// after.
    struct Case {
        name: &'static str,
        before: PaymentState,
        effect: PaymentEffect,
        status: InvoiceStatus,
        amount_paid: i64,
        amount_refunded: i64,
        changed: bool,
    }

    fn check(cases: &[Case]) {
        for case in cases {
            let transition = apply(&case.before, &case.effect);

            assert_eq!(
                transition.state.status, case.status,
                "{}: status",
                case.name
            );
            assert_eq!(
                transition.state.amount_paid, case.amount_paid,
                "{}: amount_paid",
                case.name
            );
            assert_eq!(
                transition.state.amount_refunded, case.amount_refunded,
                "{}: amount_refunded",
                case.name
            );
            assert_eq!(
                transition.state.amount_due, case.before.amount_due,
                "{}: amount_due",
                case.name
            );
            assert_eq!(transition.changed, case.changed, "{}: changed", case.name);
            assert!(!transition.note.is_empty(), "{}: note", case.name);
        }
    }

    fn replay(state: PaymentState, effects: &[PaymentEffect]) -> PaymentState {
        effects
            .iter()
            .fold(state, |current, effect| apply(&current, effect).state)
    }

    #[test]
    fn paid_rules() {
        check(&[
            Case {
                name: "open paid in full",
                before: invoice(Open, 10_000, 0, 0),
                effect: PaymentEffect::Paid { total_paid: 10_000 },
                status: Paid,
                amount_paid: 10_000,
                amount_refunded: 0,
                changed: true,
            },
            Case {
                name: "open overpaid",
                before: invoice(Open, 10_000, 0, 0),
                effect: PaymentEffect::Paid { total_paid: 12_000 },
                status: Paid,
                amount_paid: 12_000,
                amount_refunded: 0,
                changed: true,
            },
            Case {
                name: "pending paid in full",
                before: invoice(PaymentPending, 10_000, 0, 0),
                effect: PaymentEffect::Paid { total_paid: 10_000 },
                status: Paid,
                amount_paid: 10_000,
                amount_refunded: 0,
                changed: true,
            },
            Case {
                name: "open partial payment",
                before: invoice(Open, 10_000, 0, 0),
                effect: PaymentEffect::Paid { total_paid: 4_000 },
                status: Open,
                amount_paid: 4_000,
                amount_refunded: 0,
                changed: true,
            },
            Case {
                name: "pending partial payment returns to open",
                before: invoice(PaymentPending, 10_000, 0, 0),
                effect: PaymentEffect::Paid { total_paid: 4_000 },
                status: Open,
                amount_paid: 4_000,
                amount_refunded: 0,
                changed: true,
            },
            Case {
                name: "pending with an older partial total stays pending",
                before: invoice(PaymentPending, 10_000, 4_000, 0),
                effect: PaymentEffect::Paid { total_paid: 4_000 },
                status: PaymentPending,
                amount_paid: 4_000,
                amount_refunded: 0,
                changed: false,
            },
            Case {
                name: "smaller total never lowers amount_paid",
                before: invoice(Paid, 10_000, 10_000, 0),
                effect: PaymentEffect::Paid { total_paid: 4_000 },
                status: Paid,
                amount_paid: 10_000,
                amount_refunded: 0,
                changed: false,
            },
            Case {
                name: "void records the amount and stays void",
                before: invoice(Void, 10_000, 0, 0),
                effect: PaymentEffect::Paid { total_paid: 10_000 },
                status: Void,
                amount_paid: 10_000,
                amount_refunded: 0,
                changed: true,
            },
            Case {
                name: "refunded stays refunded",
                before: invoice(Refunded, 10_000, 10_000, 10_000),
                effect: PaymentEffect::Paid { total_paid: 10_000 },
                status: Refunded,
                amount_paid: 10_000,
                amount_refunded: 10_000,
                changed: false,
            },
            Case {
                name: "disputed stays disputed",
                before: invoice(Disputed, 10_000, 10_000, 0),
                effect: PaymentEffect::Paid { total_paid: 10_000 },
                status: Disputed,
                amount_paid: 10_000,
                amount_refunded: 0,
                changed: false,
            },
            Case {
                name: "refund applied before the payment",
                before: invoice(Open, 10_000, 0, 10_000),
                effect: PaymentEffect::Paid { total_paid: 10_000 },
                status: Refunded,
                amount_paid: 10_000,
                amount_refunded: 10_000,
                changed: true,
            },
        ]);
    }

    #[test]
    fn failed_rules() {
        check(&[
            Case {
                name: "open stays open",
                before: invoice(Open, 10_000, 0, 0),
                effect: PaymentEffect::Failed,
                status: Open,
                amount_paid: 0,
                amount_refunded: 0,
                changed: false,
            },
            Case {
                name: "pending returns to open",
                before: invoice(PaymentPending, 10_000, 0, 0),
                effect: PaymentEffect::Failed,
                status: Open,
                amount_paid: 0,
                amount_refunded: 0,
                changed: true,
            },
            Case {
                name: "paid is never downgraded",
                before: invoice(Paid, 10_000, 10_000, 0),
                effect: PaymentEffect::Failed,
                status: Paid,
                amount_paid: 10_000,
                amount_refunded: 0,
                changed: false,
            },
            Case {
                name: "refunded is never downgraded",
                before: invoice(Refunded, 10_000, 10_000, 10_000),
                effect: PaymentEffect::Failed,
                status: Refunded,
                amount_paid: 10_000,
                amount_refunded: 10_000,
                changed: false,
            },
            Case {
                name: "disputed is never downgraded",
                before: invoice(Disputed, 10_000, 10_000, 0),
                effect: PaymentEffect::Failed,
                status: Disputed,
                amount_paid: 10_000,
                amount_refunded: 0,
                changed: false,
            },
            Case {
                name: "void stays void",
                before: invoice(Void, 10_000, 0, 0),
                effect: PaymentEffect::Failed,
                status: Void,
                amount_paid: 0,
                amount_refunded: 0,
                changed: false,
            },
        ]);
    }

    #[test]
    fn failed_note_says_already_paid() {
        let transition = apply(&invoice(Paid, 10_000, 10_000, 0), &PaymentEffect::Failed);

        assert_eq!(transition.note, "ignored: invoice already paid");
    }

    #[test]
    fn pending_rules() {
        check(&[
            Case {
                name: "open becomes pending",
                before: invoice(Open, 10_000, 0, 0),
                effect: PaymentEffect::Pending,
                status: PaymentPending,
                amount_paid: 0,
                amount_refunded: 0,
                changed: true,
            },
            Case {
                name: "pending stays pending",
                before: invoice(PaymentPending, 10_000, 0, 0),
                effect: PaymentEffect::Pending,
                status: PaymentPending,
                amount_paid: 0,
                amount_refunded: 0,
                changed: false,
            },
            Case {
                name: "paid stays paid",
                before: invoice(Paid, 10_000, 10_000, 0),
                effect: PaymentEffect::Pending,
                status: Paid,
                amount_paid: 10_000,
                amount_refunded: 0,
                changed: false,
            },
            Case {
                name: "void stays void",
                before: invoice(Void, 10_000, 0, 0),
                effect: PaymentEffect::Pending,
                status: Void,
                amount_paid: 0,
                amount_refunded: 0,
                changed: false,
            },
            Case {
                name: "disputed stays disputed",
                before: invoice(Disputed, 10_000, 10_000, 0),
                effect: PaymentEffect::Pending,
                status: Disputed,
                amount_paid: 10_000,
                amount_refunded: 0,
                changed: false,
            },
        ]);
    }

    #[test]
    fn refunded_rules() {
        check(&[
            Case {
                name: "full refund",
                before: invoice(Paid, 10_000, 10_000, 0),
                effect: PaymentEffect::Refunded {
                    total_refunded: 10_000,
                },
                status: Refunded,
                amount_paid: 10_000,
                amount_refunded: 10_000,
                changed: true,
            },
            Case {
                name: "partial refund keeps paid",
                before: invoice(Paid, 10_000, 10_000, 0),
                effect: PaymentEffect::Refunded {
                    total_refunded: 3_000,
                },
                status: Paid,
                amount_paid: 10_000,
                amount_refunded: 3_000,
                changed: true,
            },
            Case {
                name: "refund of a partial payment in full",
                before: invoice(Open, 10_000, 4_000, 0),
                effect: PaymentEffect::Refunded {
                    total_refunded: 4_000,
                },
                status: Refunded,
                amount_paid: 4_000,
                amount_refunded: 4_000,
                changed: true,
            },
            Case {
                name: "refund before any payment is recorded",
                before: invoice(Open, 10_000, 0, 0),
                effect: PaymentEffect::Refunded {
                    total_refunded: 10_000,
                },
                status: Open,
                amount_paid: 0,
                amount_refunded: 10_000,
                changed: true,
            },
            Case {
                name: "disputed records the refund",
                before: invoice(Disputed, 10_000, 10_000, 0),
                effect: PaymentEffect::Refunded {
                    total_refunded: 10_000,
                },
                status: Disputed,
                amount_paid: 10_000,
                amount_refunded: 10_000,
                changed: true,
            },
            Case {
                name: "void records the refund",
                before: invoice(Void, 10_000, 10_000, 0),
                effect: PaymentEffect::Refunded {
                    total_refunded: 10_000,
                },
                status: Void,
                amount_paid: 10_000,
                amount_refunded: 10_000,
                changed: true,
            },
        ]);
    }

    #[test]
    fn refund_in_two_steps() {
        let paid = invoice(Paid, 10_000, 10_000, 0);

        let first = apply(
            &paid,
            &PaymentEffect::Refunded {
                total_refunded: 3_000,
            },
        );
        assert_eq!(first.state.status, Paid);
        assert_eq!(first.state.amount_refunded, 3_000);

        let second = apply(
            &first.state,
            &PaymentEffect::Refunded {
                total_refunded: 10_000,
            },
        );
        assert_eq!(second.state.status, Refunded);
        assert_eq!(second.state.amount_refunded, 10_000);

        let replayed = apply(
            &second.state,
            &PaymentEffect::Refunded {
                total_refunded: 3_000,
            },
        );
        assert_eq!(replayed.state.status, Refunded);
        assert_eq!(replayed.state.amount_refunded, 10_000);
        assert!(!replayed.changed);
    }

    #[test]
    fn dispute_rules() {
        check(&[
            Case {
                name: "paid becomes disputed",
                before: invoice(Paid, 10_000, 10_000, 0),
                effect: PaymentEffect::DisputeOpened,
                status: Disputed,
                amount_paid: 10_000,
                amount_refunded: 0,
                changed: true,
            },
            Case {
                name: "open with a payment becomes disputed",
                before: invoice(Open, 10_000, 4_000, 0),
                effect: PaymentEffect::DisputeOpened,
                status: Disputed,
                amount_paid: 4_000,
                amount_refunded: 0,
                changed: true,
            },
            Case {
                name: "open without a payment is kept",
                before: invoice(Open, 10_000, 0, 0),
                effect: PaymentEffect::DisputeOpened,
                status: Open,
                amount_paid: 0,
                amount_refunded: 0,
                changed: false,
            },
            Case {
                name: "refunded is kept on opening",
                before: invoice(Refunded, 10_000, 10_000, 10_000),
                effect: PaymentEffect::DisputeOpened,
                status: Refunded,
                amount_paid: 10_000,
                amount_refunded: 10_000,
                changed: false,
            },
            Case {
                name: "won returns to paid",
                before: invoice(Disputed, 10_000, 10_000, 0),
                effect: PaymentEffect::DisputeClosed { won: true },
                status: Paid,
                amount_paid: 10_000,
                amount_refunded: 0,
                changed: true,
            },
            Case {
                name: "lost becomes refunded",
                before: invoice(Disputed, 10_000, 10_000, 0),
                effect: PaymentEffect::DisputeClosed { won: false },
                status: Refunded,
                amount_paid: 10_000,
                amount_refunded: 0,
                changed: true,
            },
            Case {
                name: "won on a partial payment returns to open",
                before: invoice(Disputed, 10_000, 4_000, 0),
                effect: PaymentEffect::DisputeClosed { won: true },
                status: Open,
                amount_paid: 4_000,
                amount_refunded: 0,
                changed: true,
            },
            Case {
                name: "lost without the opening applied",
                before: invoice(Paid, 10_000, 10_000, 0),
                effect: PaymentEffect::DisputeClosed { won: false },
                status: Refunded,
                amount_paid: 10_000,
                amount_refunded: 0,
                changed: true,
            },
            Case {
                name: "won keeps an app-marked paid invoice paid",
                before: invoice(Paid, 10_000, 0, 0),
                effect: PaymentEffect::DisputeClosed { won: true },
                status: Paid,
                amount_paid: 0,
                amount_refunded: 0,
                changed: false,
            },
            Case {
                name: "closed on void is ignored",
                before: invoice(Void, 10_000, 10_000, 0),
                effect: PaymentEffect::DisputeClosed { won: false },
                status: Void,
                amount_paid: 10_000,
                amount_refunded: 0,
                changed: false,
            },
        ]);
    }

    #[test]
    fn confirmed_by_stripe_on_settled_statuses() {
        let cases = [
            (
                invoice(Open, 10_000, 0, 0),
                PaymentEffect::Paid { total_paid: 10_000 },
            ),
            (
                invoice(Paid, 10_000, 10_000, 0),
                PaymentEffect::Refunded {
                    total_refunded: 10_000,
                },
            ),
            (
                invoice(Paid, 10_000, 10_000, 0),
                PaymentEffect::DisputeOpened,
            ),
            (
                invoice(Disputed, 10_000, 10_000, 0),
                PaymentEffect::DisputeClosed { won: true },
            ),
            (
                invoice(Disputed, 10_000, 10_000, 0),
                PaymentEffect::DisputeClosed { won: false },
            ),
            (
                invoice(Paid, 10_000, 0, 0),
                PaymentEffect::Paid { total_paid: 10_000 },
            ),
        ];

        for (before, effect) in cases {
            let transition = apply(&before, &effect);

            assert!(
                transition.state.confirmed_by_stripe,
                "{before:?} with {effect:?}"
            );
        }
    }

    #[test]
    fn unconfirmed_when_status_not_settled() {
        let cases = [
            (invoice(Paid, 10_000, 0, 0), PaymentEffect::Failed),
            (invoice(Paid, 10_000, 0, 0), PaymentEffect::Pending),
            (
                invoice(Open, 10_000, 0, 0),
                PaymentEffect::Paid { total_paid: 4_000 },
            ),
            (invoice(Open, 10_000, 0, 0), PaymentEffect::Pending),
            (
                invoice(Void, 10_000, 0, 0),
                PaymentEffect::Paid { total_paid: 10_000 },
            ),
            (
                invoice(Paid, 10_000, 10_000, 0),
                PaymentEffect::Paid { total_paid: 4_000 },
            ),
        ];

        for (before, effect) in cases {
            let transition = apply(&before, &effect);

            assert!(
                !transition.state.confirmed_by_stripe,
                "{before:?} with {effect:?}"
            );
        }
    }

    #[test]
    fn confirmed_flag_never_cleared() {
        let mut before = invoice(PaymentPending, 10_000, 0, 0);
        before.confirmed_by_stripe = true;

        let transition = apply(&before, &PaymentEffect::Failed);

        assert_eq!(transition.state.status, Open);
        assert!(transition.state.confirmed_by_stripe);
    }

    #[test]
    fn older_failure_after_payment_keeps_paid() {
        let after = replay(
            invoice(Open, 10_000, 0, 0),
            &[
                PaymentEffect::Paid { total_paid: 10_000 },
                PaymentEffect::Failed,
            ],
        );

        assert_eq!(after.status, Paid);
        assert_eq!(after.amount_paid, 10_000);
    }

    #[test]
    fn pending_after_payment_keeps_paid() {
        let after = replay(
            invoice(Open, 10_000, 0, 0),
            &[
                PaymentEffect::Paid { total_paid: 10_000 },
                PaymentEffect::Pending,
            ],
        );

        assert_eq!(after.status, Paid);
    }

    #[test]
    fn refund_and_payment_in_either_order() {
        let start = invoice(Open, 10_000, 0, 0);
        let paid = PaymentEffect::Paid { total_paid: 10_000 };
        let refunded = PaymentEffect::Refunded {
            total_refunded: 10_000,
        };

        let in_order = replay(start, &[paid, refunded]);
        let reversed = replay(start, &[refunded, paid]);

        assert_eq!(in_order.status, Refunded);
        assert_eq!(reversed, in_order);
    }

    #[test]
    fn zero_decimal_partial_payments() {
        // 5000 is ¥5000 in JPY's minor unit, which is the whole yen.
        let start = invoice(Open, 5_000, 0, 0);

        let first = apply(&start, &PaymentEffect::Paid { total_paid: 2_000 });
        assert_eq!(first.state.status, Open);
        assert_eq!(first.state.amount_paid, 2_000);

        let second = apply(&first.state, &PaymentEffect::Paid { total_paid: 4_999 });
        assert_eq!(second.state.status, Open);
        assert_eq!(second.state.amount_paid, 4_999);

        let third = apply(&second.state, &PaymentEffect::Paid { total_paid: 5_000 });
        assert_eq!(third.state.status, Paid);
        assert_eq!(third.state.amount_paid, 5_000);
        assert!(third.state.confirmed_by_stripe);
    }

    #[test]
    fn dispute_won_and_lost() {
        let paid = invoice(Paid, 10_000, 10_000, 0);
        let opened = apply(&paid, &PaymentEffect::DisputeOpened).state;
        assert_eq!(opened.status, Disputed);

        let won = apply(&opened, &PaymentEffect::DisputeClosed { won: true });
        assert_eq!(won.state.status, Paid);
        assert!(won.changed);

        let lost = apply(&opened, &PaymentEffect::DisputeClosed { won: false });
        assert_eq!(lost.state.status, Refunded);
        assert!(lost.changed);
    }

    #[test]
    fn same_effect_twice_changes_nothing() {
        let effects = [
            PaymentEffect::Paid { total_paid: 10_000 },
            PaymentEffect::Paid { total_paid: 4_000 },
            PaymentEffect::Failed,
            PaymentEffect::Pending,
            PaymentEffect::Refunded {
                total_refunded: 3_000,
            },
            PaymentEffect::Refunded {
                total_refunded: 10_000,
            },
            PaymentEffect::DisputeOpened,
            PaymentEffect::DisputeClosed { won: true },
            PaymentEffect::DisputeClosed { won: false },
        ];
        let starts = [
            invoice(Open, 10_000, 0, 0),
            invoice(Open, 10_000, 4_000, 0),
            invoice(PaymentPending, 10_000, 0, 0),
            invoice(PaymentPending, 10_000, 4_000, 0),
            invoice(Paid, 10_000, 10_000, 0),
            invoice(Paid, 10_000, 10_000, 3_000),
            invoice(Void, 10_000, 0, 0),
            invoice(Refunded, 10_000, 10_000, 10_000),
            invoice(Disputed, 10_000, 10_000, 0),
            invoice(Disputed, 10_000, 4_000, 0),
        ];

        for start in starts {
            for effect in effects {
                let first = apply(&start, &effect);

                let second = apply(&first.state, &effect);

                assert!(
                    !second.changed,
                    "{start:?} with {effect:?} twice: {second:?}"
                );
                assert_eq!(second.state, first.state, "{start:?} with {effect:?}");
            }
        }
    }

    #[test]
    fn leaves_open_only_from_open() {
        let open = invoice(Open, 10_000, 0, 0);
        let pending = invoice(PaymentPending, 10_000, 0, 0);
        let paid = invoice(Paid, 10_000, 10_000, 0);

        assert!(leaves_open(&open, &paid));
        assert!(leaves_open(&open, &pending));
        assert!(!leaves_open(&open, &open));
        assert!(!leaves_open(&pending, &paid));
        assert!(!leaves_open(&paid, &open));
    }
}
