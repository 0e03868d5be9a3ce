//! A server `Connection` fed arbitrary bytes in chunks: it never panics, its output is well
//! formed with a valid close code, and its read buffer stays bounded. See `common/mod.rs` for
//! the input layout.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use sockeye_proto::Role;

fuzz_target!(|data: &[u8]| common::run(Role::Server, data));
