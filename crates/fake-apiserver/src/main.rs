//! Runs the fake API server on a loopback port.
fn main() {}
