//! Generates Rust bindings from the committed C header with bindgen, compiles
//! a small C helper with cc, and links the real shared library built by
//! `make stage` (the Makefile stages it first).
use std::path::PathBuf;

use anyhow::{Context, Result};

fn main() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let header = root.join("include/mapcore.h");
    println!("cargo:rerun-if-changed={}", header.display());
    println!("cargo:rerun-if-changed=src/helper.c");

    let bindings = bindgen::Builder::default()
        .header(header.to_string_lossy())
        .allowlist_function("mc_.*")
        .allowlist_type("mc_.*")
        .allowlist_var("MC_.*")
        .layout_tests(true)
        .generate()
        .context("bindgen could not parse include/mapcore.h")?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    bindings
        .write_to_file(out.join("bindings.rs"))
        .context("writing bindings")?;

    // C code compiled against the same header: callbacks and struct layouts
    // as a C compiler sees them.
    cc::Build::new()
        .file("src/helper.c")
        .include(root.join("include"))
        .flag_if_supported("-Wall")
        .flag_if_supported("-Werror")
        .compile("abi_helper");

    // The staged install has the soname links (libmapcore.so.1) the loader needs.
    let lib_dir = root
        .join("build/stage/lib")
        .canonicalize()
        .context("stage libmapcore first: make stage")?;
    println!("cargo:rustc-link-search=native={}", lib_dir.display());
    println!("cargo:rustc-link-lib=dylib=mapcore");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib_dir.display());
    Ok(())
}
