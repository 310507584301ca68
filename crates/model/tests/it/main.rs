//! Model tests: every type's JSON shape against the spec, and against `proto-schemas/`.

mod schemas;
mod shapes;
