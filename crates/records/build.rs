//! Tells the tests whether a MongoDB server is at hand (`HERALD_TEST_MONGODB_URL`), so that the
//! MongoDB suite runs there and is reported as ignored elsewhere.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(herald_mongodb)");
    println!("cargo::rerun-if-env-changed=HERALD_TEST_MONGODB_URL");
    if std::env::var_os("HERALD_TEST_MONGODB_URL").is_some_and(|url| !url.is_empty()) {
        println!("cargo::rustc-cfg=herald_mongodb");
    }
}
