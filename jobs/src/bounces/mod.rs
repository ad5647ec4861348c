//! Email bounces and complaints: provider notifications, the suppression list and its policy.

pub mod address;
pub mod policy;
pub mod postmark;
pub mod ses;
pub mod sns;
pub mod suppression;
