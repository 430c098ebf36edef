//! PharmaTwin analytics: remaining-useful-life estimation and related models.

pub mod mspc;
pub mod rul;
pub mod spc;
