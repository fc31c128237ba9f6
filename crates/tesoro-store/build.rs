// sqlx's `migrate!` embeds the migration files when the crate compiles, but cargo only
// knows to recompile when a file it already embedded changes: a new migration file would
// be left out of an incremental build. Watching the folder catches additions too.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
