//! Embeds the admin UI: copies `ui/dist` (built by `npm run build` in
//! `ui/`) into OUT_DIR, where `assets.rs` embeds it. Without a build, a page
//! saying how to build the UI is embedded instead, so the gateway and its
//! API still compile and run.
use std::path::{Path, PathBuf};

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dist = Path::new("ui/dist");
    println!("cargo:rerun-if-changed=ui/dist");
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("ui");
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    if dist.join("index.html").exists() {
        copy_dir(dist, &out)?;
    } else {
        println!(
            "cargo:warning=admin-web/ui/dist is missing: embedding a placeholder (build the UI: cd admin-web/ui && npm ci && npm run build)"
        );
        std::fs::create_dir_all(&out)?;
        std::fs::write(
            out.join("index.html"),
            "<!doctype html><html lang=en><head><meta charset=utf-8><title>AI Gateway admin</title></head>\
             <body><main><h1>AI Gateway</h1><p>This admin-web was built without its UI. Build it with \
             <code>cd admin-web/ui &amp;&amp; npm ci &amp;&amp; npm run build</code>, then rebuild admin-web. \
             The JSON API is at <a href=\"/api/openapi.json\">/api/openapi.json</a>.</p></main></body></html>",
        )?;
    }
    Ok(())
}
