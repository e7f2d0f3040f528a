// Links the mapcore shared library built by the top-level `make lib`
// (../../target/release/libmapcore.so), with an rpath so the benchmark runs
// without LD_LIBRARY_PATH.
use std::path::PathBuf;

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../target/release");
    let dir = dir.canonicalize().unwrap_or(dir);
    let so = dir.join("libmapcore.so");
    if !so.exists() {
        panic!("{} not found: run `make lib` at the repository root first", so.display());
    }
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=dylib=mapcore");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    println!("cargo:rerun-if-changed={}", so.display());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let v = std::process::Command::new(rustc)
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=BENCH_RUSTC_VERSION={v}");
}
