//! Send-time policy (being written).
