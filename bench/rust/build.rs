// Links the mapcore shared library built by the top-level `make lib`
// (../../target/release/libmapcore.so), with an rpath so the benchmark runs
// without LD_LIBRARY_PATH (through a libmapcore.so.1 link in OUT_DIR).
use std::path::PathBuf;

fn main() {
    let dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../target/release");
    let dir = dir.canonicalize().unwrap_or(dir);
    let so = dir.join("libmapcore.so");
    if !so.exists() {
        panic!(
            "{} not found: run `make lib` at the repository root first",
            so.display()
        );
    }
    // The library's soname is libmapcore.so.1, which only `make install`
    // lays out; point a private libmapcore.so.1 link at the fresh build.
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let link = out.join("libmapcore.so.1");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&so, &link).expect("symlink libmapcore.so.1");
    println!("cargo:rustc-link-search=native={}", dir.display());
    println!("cargo:rustc-link-lib=dylib=mapcore");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", out.display());
    println!("cargo:rerun-if-changed={}", so.display());
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let v = std::process::Command::new(rustc)
        .arg("-V")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=BENCH_RUSTC_VERSION={v}");
}
