//! Tests live in `tests/`; see interop/README.md.
