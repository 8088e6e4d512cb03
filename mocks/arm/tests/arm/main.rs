//! Integration tests of the ARM mock against the real mock Entra: ARM's JSON shapes, its
//! api-version errors, RBAC and token errors. One binary (see ARCHITECTURE.md, "Tests and CI").

mod rbac;
mod shapes;
mod support;
mod tokens;
