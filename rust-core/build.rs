// The shared library carries the soname of its ABI major version so that
// `make install` can lay out libmapcore.so -> libmapcore.so.1 -> libmapcore.so.1.0.0.
fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libmapcore.so.1");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
