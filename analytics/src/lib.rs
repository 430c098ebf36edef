//! PharmaTwin analytics: pure computations on data handed to them — remaining useful life,
//! critical-quality-attribute prediction, statistical process control and multivariate
//! monitoring, and the learners they share.

pub mod gbm;
pub mod maintenance;
pub mod mspc;
pub mod quality;
pub mod rul;
pub mod spc;
