//! The manifests-directory source: `load` reads and translates
//! `*.yaml`/`*.yml`/`*.json` files, `watch` watches the directory to
//! publish every good set.

pub mod invariants;
mod load;
mod watch;

pub use load::{load_and_translate, load_dir};
pub use watch::ManifestSource;
