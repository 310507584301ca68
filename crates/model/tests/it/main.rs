//! Model tests: every type's JSON shape against the spec, and against `proto-schemas/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod schemas;
mod shapes;
