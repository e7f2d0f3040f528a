//! The committed include/mapcore.h must be exactly what the pinned cbindgen
//! generates from the current Rust code (`make header` regenerates it).

#[test]
fn committed_header_matches_generated() {
    let crate_dir = env!("CARGO_MANIFEST_DIR");
    let config =
        cbindgen::Config::from_file(format!("{crate_dir}/cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let committed = std::fs::read(format!("{crate_dir}/../include/mapcore.h"))
        .expect("include/mapcore.h exists");
    if generated != committed {
        let g = String::from_utf8_lossy(&generated);
        let c = String::from_utf8_lossy(&committed);
        let first = g.lines().zip(c.lines()).position(|(a, b)| a != b);
        panic!(
            "include/mapcore.h is stale (first differing line: {:?}); run `make header` and commit it",
            first.map(|i| i + 1)
        );
    }
}
