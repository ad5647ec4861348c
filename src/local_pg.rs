//! Private PostgreSQL cluster for `duespark dev` (being written).
