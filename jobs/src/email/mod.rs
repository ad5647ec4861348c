//! Email rendering and delivery (being written).
