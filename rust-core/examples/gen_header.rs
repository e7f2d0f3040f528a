//! Regenerates include/mapcore.h with the pinned cbindgen: `make header`.
use anyhow::{Context, Result};

fn main() -> Result<()> {
    let crate_dir = env!("CARGO_MANIFEST_DIR");
    let out = std::path::Path::new(crate_dir).join("../include/mapcore.h");
    let text = mapcore_header(crate_dir)?;
    std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(())
}

fn mapcore_header(crate_dir: &str) -> Result<String> {
    let config = cbindgen::Config::from_file(format!("{crate_dir}/cbindgen.toml"))
        .map_err(anyhow::Error::msg)?;
    let bindings = cbindgen::Builder::new()
        .with_crate(crate_dir)
        .with_config(config)
        .generate()
        .context("cbindgen failed")?;
    let mut buf = Vec::new();
    bindings.write(&mut buf);
    Ok(String::from_utf8(buf)?)
}
