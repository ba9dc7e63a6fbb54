//! The isolation ladder: what to do when the page starts, given whether it
//! is `crossOriginIsolated` and what the service worker can do; and when
//! the page waits for the service worker's registration, and claims its
//! scope again. The decisions are pure (tested natively); `boot.rs` and
//! `client.rs` gather the facts and act on them.
//!
//! 1. Already isolated: by the server's headers, or by the service worker's
//!    (it marks documents it isolated with `Server-Timing: isolation`).
//! 2. Not isolated, service worker running, not yet tried: reload once, so
//!    the document comes through the service worker, which adds
//!    Document-Isolation-Policy + COOP + COEP `credentialless` (or
//!    `require-corp` where `credentialless` is unsupported: Safari).
//! 3. Still not isolated after that reload, or no service worker: one worker
//!    on a private filesystem, announced.

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    ServerHeaders,
    ServiceWorkerHeaders,
    /// Not isolated: a single worker with a private filesystem.
    SingleWorker { reason: String },
}

impl Mode {
    pub fn name(&self) -> &'static str {
        match self {
            Mode::ServerHeaders => "server-headers",
            Mode::ServiceWorkerHeaders => "service-worker-headers",
            Mode::SingleWorker { .. } => "single-worker",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Proceed(Mode),
    /// Reload the page once; the service worker will add the headers.
    Reload,
}

pub struct Facts<'a> {
    pub isolated: bool,
    /// The service worker added the headers to this document.
    pub injected: bool,
    /// Whether a service worker controls this page, or why not.
    pub service_worker: Result<(), &'a str>,
    /// This page load is the one reload the ladder allows.
    pub already_reloaded: bool,
}

pub fn decide(facts: &Facts) -> Decision {
    if facts.isolated {
        return Decision::Proceed(if facts.injected { Mode::ServiceWorkerHeaders } else { Mode::ServerHeaders });
    }
    match facts.service_worker {
        Err(why) => Decision::Proceed(Mode::SingleWorker {
            reason: format!("not cross-origin isolated and no service worker to add the headers ({why})"),
        }),
        Ok(()) if !facts.already_reloaded => Decision::Reload,
        Ok(()) => Decision::Proceed(Mode::SingleWorker {
            reason: "not cross-origin isolated even with the service worker's headers (the browser or an \
                     embedding page prevents it)"
                .into(),
        }),
    }
}

/// Whether the boot waits for `register()` to settle. Not when this very
/// script already controls the page (a reload, a returning visit): its
/// registration is active, and after a navigation Chromium 156 held
/// `register()` back for 2.3-5 s, so the update check runs in the
/// background instead.
pub fn must_await_registration(controller_script: Option<&str>, our_script: &str) -> bool {
    controller_script != Some(our_script)
}

/// A service worker the browser stopped while idle and started again has
/// lost the port it was given: it sends the scope's requests to the page,
/// which passes them on to the process manager and claims the scope again
/// with a new port, so the next ones skip the page. The requests that come
/// meanwhile say the same thing: one claim per `CLAIM_AGAIN_AFTER_MS`.
pub const CLAIM_AGAIN_AFTER_MS: f64 = 2000.0;

pub fn claims_again(last_claim_at: Option<f64>, now: f64) -> bool {
    last_claim_at.is_none_or(|at| now - at > CLAIM_AGAIN_AFTER_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(isolated: bool, injected: bool, sw: Result<(), &str>, reloaded: bool) -> Decision {
        decide(&Facts { isolated, injected, service_worker: sw, already_reloaded: reloaded })
    }

    #[test]
    fn isolated_pages_proceed_and_say_who_isolated_them() {
        assert_eq!(facts(true, false, Ok(()), false), Decision::Proceed(Mode::ServerHeaders));
        assert_eq!(facts(true, true, Ok(()), true), Decision::Proceed(Mode::ServiceWorkerHeaders));
    }

    #[test]
    fn one_reload_then_single_worker_never_a_loop() {
        assert_eq!(facts(false, false, Ok(()), false), Decision::Reload);
        match facts(false, false, Ok(()), true) {
            Decision::Proceed(Mode::SingleWorker { reason }) => assert!(reason.contains("even with")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn no_service_worker_means_single_worker_at_once() {
        match facts(false, false, Err("blocked"), false) {
            Decision::Proceed(Mode::SingleWorker { reason }) => assert!(reason.contains("blocked")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn only_a_page_controlled_by_another_or_no_script_waits_for_registration() {
        let ours = "http://127.0.0.1:8080/sw.js?coep=credentialless";
        assert!(must_await_registration(None, ours));
        assert!(must_await_registration(Some("http://127.0.0.1:8080/sw.js?coep=require-corp"), ours));
        assert!(!must_await_registration(Some(ours), ours));
    }

    #[test]
    fn a_restarted_service_workers_requests_make_one_claim_per_two_seconds() {
        assert!(claims_again(None, 0.0));
        assert!(!claims_again(Some(1000.0), 1000.0));
        assert!(!claims_again(Some(1000.0), 3000.0));
        assert!(claims_again(Some(1000.0), 3000.5));
    }
}
