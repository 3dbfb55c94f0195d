//! Shared by the example worker's tests: where the built `hello` binary is.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

/// `<target>/<profile>/examples/hello`, from this test binary at `<target>/<profile>/deps/`.
/// Cargo builds examples before running tests.
pub fn hello_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let bin =
        exe.parent().and_then(|deps| deps.parent()).expect("target dir").join("examples/hello");
    assert!(bin.exists(), "{} missing: run `cargo build -p examples --examples`", bin.display());
    bin
}
