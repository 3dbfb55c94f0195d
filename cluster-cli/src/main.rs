//! The `cluster` command.
fn main() {}
