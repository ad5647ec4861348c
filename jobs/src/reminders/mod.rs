//! Invoice reminders: stages, the send-time policy, the scheduler and the delivery job.

pub mod deliver;
pub mod schedule;
pub mod scheduler;
pub mod stage;
pub mod store;

pub use stage::Stage;
