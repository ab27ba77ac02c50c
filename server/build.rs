//! Rebuilds the server when a migration is added or changed: the migrations are embedded in
//! the binary by `sqlx::migrate!`, which cannot track the folder by itself.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
