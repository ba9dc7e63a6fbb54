//! The host: the part of the runtime a page embeds, and its process manager.
//!
//! - `boot`: cross-origin isolation check, service worker, shared memory,
//!   compiling the modules once, starting the process manager;
//! - `manager_link` (on the page) and `manager` (its own worker): the
//!   process manager, which holds the pool, so that no request waits for
//!   the page's main thread;
//! - `pool`: the Web Workers and the messages to and from them (in the
//!   manager);
//! - `scheduler`, `supervisor`: which worker runs what, and what each
//!   worker's death calls for (pure Rust, tested natively);
//! - `client`: the API an embedding page (and `window.playground`) uses;
//! - `saved_sites`: which saved site a page opens, one tab per site, and
//!   listing, renaming and deleting them;
//! - `options`: the messages for an option given wrong;
//! - `blueprint`, `versions`: Blueprints around Playground's engine, and the
//!   PHP/WordPress versions one may ask for.
//!
//! It never calls blocking shared-fs code: `Atomics.wait` traps on the main
//! thread, so everything that touches the filesystem runs in a worker.

pub mod blueprint;
pub mod isolation;
pub mod options;
pub mod scheduler;
pub mod supervisor;
pub mod versions;
pub mod wasm_imports;

#[cfg(target_arch = "wasm32")]
mod boot;
#[cfg(target_arch = "wasm32")]
mod client;
#[cfg(target_arch = "wasm32")]
mod manager;
#[cfg(target_arch = "wasm32")]
mod manager_link;
#[cfg(target_arch = "wasm32")]
mod pool;
#[cfg(target_arch = "wasm32")]
mod saved_sites;
#[cfg(target_arch = "wasm32")]
mod util;
