//! Shared by the examples' tests: where the built example binaries are.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;

/// `<target>/<profile>/examples/hello`, from this test binary at `<target>/<profile>/deps/`.
/// Cargo builds examples before running tests.
pub fn hello_bin() -> PathBuf {
    example_bin("hello")
}

/// `<target>/<profile>/examples/<name>`: the built example `name`.
pub fn example_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("examples")
        .join(name);
    assert!(bin.exists(), "{} missing: run `cargo build -p examples --examples`", bin.display());
    bin
}
