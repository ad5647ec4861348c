//! Rebuilds the crate when a migration is added: `sqlx::migrate!` embeds the migrations folder, and
//! cargo does not see a new file in it otherwise.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
