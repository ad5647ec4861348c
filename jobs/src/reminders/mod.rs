//! Invoice reminders: stages, the send-time policy, the scheduler and the delivery job.

pub mod schedule;
pub mod stage;

pub use stage::Stage;
