//! The `duespark` binary's library: configuration, the command-line interface and the local
//! PostgreSQL helper used by `duespark dev`.

pub mod local_pg;
