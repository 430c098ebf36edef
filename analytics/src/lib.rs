//! PharmaTwin analytics: remaining-useful-life estimation and related models.

pub mod rul;
pub mod spc;
