//! `rauta check`: the route table as text tables, and the migration
//! report built on it (each Ingress's annotations with rauta's verdict, a
//! summary, and an exit code to gate a CI pipeline on), as text or JSON.

mod config;
pub mod migration;
mod text;

pub use config::{render, ConfigView};
pub use migration::Report;
pub use text::text;
