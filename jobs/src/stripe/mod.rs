//! Stripe: webhook signature verification, the per-invoice payment state machine, event intake
//! and processing, and the Stripe API client used by payment sync.

pub mod client;
pub mod intake;
pub mod process;
pub mod reconcile;
pub mod signature;
pub mod state;
pub mod sync;
