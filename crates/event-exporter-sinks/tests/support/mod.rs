//! Fake receivers for tests: real HTTP servers on 127.0.0.1 ephemeral ports.
#![allow(dead_code, unreachable_pub)]

pub mod fake_slack;
