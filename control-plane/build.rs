//! `embed_migrations!` reads ../migrations at compile time; a new migration
//! directory must trigger a rebuild, which cargo does not know by itself.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
