//! PharmaTwin analytics: pure computations on data handed to them — remaining useful life,
//! critical-quality-attribute prediction, statistical process control and multivariate
//! monitoring, and the learners they share.

pub mod gbm;
pub mod maintenance;
pub mod mspc;
pub mod quality;
pub mod rul;
pub mod spc;

/// `../shared/data/<rel>` beside the checkout, from the package directory cargo gives the
/// test at run time: a test binary reused from a build in another checkout (cargo keeps
/// fingerprints path-independent) still carries that checkout's compile-time path.
#[cfg(test)]
pub(crate) fn shared_data(rel: &str) -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
        .join("../../shared/data")
        .join(rel)
}
