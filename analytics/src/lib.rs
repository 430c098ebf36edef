//! PharmaTwin analytics: remaining-useful-life estimation, critical-quality-
//! attribute prediction and the models they share.

pub mod gbm;
pub mod quality;
pub mod rul;
