// The shared library carries the soname of its ABI major version so that
// `make install` can lay out libmapcore.so -> libmapcore.so.1 -> libmapcore.so.1.0.0,
// and is marked NODELETE (see below).
fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libmapcore.so.1");
        // Never unmapped by dlclose: threads still running when a program
        // closes the library would later run its pthread-key destructor
        // (engine/shard_lock.rs) at exit.
        println!("cargo:rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
