//! Material lots in use on a line: the API (with its potency), binder and coating solutions
//! made up per batch (short hold times), the lubricant, and the blister films on their reels.
//! A lot's attributes change only when the lot changes.

use rand::{rngs::SmallRng, Rng};

use super::{
    batch::Product,
    clock::Clock,
    stochastic::{gauss, uniform},
};

#[derive(Debug, Clone)]
pub(crate) struct Lot {
    pub(crate) id: String,
    /// Simulated time at which the lot expires.
    pub(crate) expires_at: f64,
}

impl Lot {
    pub(crate) fn days_left(&self, now: f64) -> f64 {
        ((self.expires_at - now) / 86_400.0).max(0.0)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct ApiLot {
    pub(crate) lot: Lot,
    pub(crate) api: &'static str,
    /// Potency on the certificate of analysis, %, and its true value.
    pub(crate) potency_coa: f64,
    pub(crate) potency_true: f64,
    batches_left: u32,
}

#[derive(Debug, Clone)]
pub(crate) struct Reel {
    pub(crate) lot: Lot,
    pub(crate) remaining_m: f64,
    length_m: f64,
    prefix: &'static str,
}

#[derive(Debug, Clone)]
pub(crate) struct Materials {
    pub(crate) api: ApiLot,
    pub(crate) binder: Lot,
    pub(crate) lubricant: Lot,
    lubricant_batches_left: u32,
    pub(crate) suspension: Lot,
    pub(crate) pvc: Reel,
    pub(crate) foil: Reel,
    /// Running number that keeps this line's lot numbers unique.
    seq: u32,
}

/// Forming and lidding film used per blister (several lanes share one index), m.
const FILM_PER_BLISTER_M: f64 = 0.016;

impl Materials {
    pub(crate) fn new(product: &Product, clock: &Clock, rng: &mut SmallRng) -> Self {
        let mut seq = rng.random_range(1000..6000);
        let yymmdd = clock.local_yymmdd();
        let mut next = || {
            seq += 1;
            seq
        };
        let api = new_api_lot(product, &yymmdd, next(), clock.now, rng);
        let binder = Lot {
            id: format!("BS{yymmdd}-{:02}", next() % 100),
            expires_at: clock.now + uniform(rng, 1.0, 2.9) * 86_400.0,
        };
        let lubricant = Lot {
            id: format!("MGS{}{:04}", &yymmdd[..2], next()),
            expires_at: clock.now + uniform(rng, 200.0, 700.0) * 86_400.0,
        };
        let suspension = Lot {
            id: format!("CS{yymmdd}-{:02}", next() % 100),
            expires_at: clock.now + uniform(rng, 0.5, 1.9) * 86_400.0,
        };
        let pvc = Reel::new("PVC", 1200.0, &yymmdd, next(), rng);
        let foil = Reel::new("ALU", 2500.0, &yymmdd, next(), rng);
        Materials {
            api,
            binder,
            lubricant,
            lubricant_batches_left: rng.random_range(2..10),
            suspension,
            pvc,
            foil,
            seq,
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq += 1;
        self.seq
    }

    /// At batch start: a new API lot when the product's API differs or the lot is used up,
    /// a new lubricant lot now and then.
    pub(crate) fn for_batch(&mut self, product: &Product, clock: &Clock, rng: &mut SmallRng) {
        let yymmdd = clock.local_yymmdd();
        if self.api.api != product.api || self.api.batches_left == 0 {
            let seq = self.next_seq();
            self.api = new_api_lot(product, &yymmdd, seq, clock.now, rng);
        }
        self.api.batches_left = self.api.batches_left.saturating_sub(1);
        if self.lubricant_batches_left == 0 {
            let seq = self.next_seq();
            self.lubricant = Lot {
                id: format!("MGS{}{:04}", &yymmdd[..2], seq),
                expires_at: clock.now + uniform(rng, 300.0, 700.0) * 86_400.0,
            };
            self.lubricant_batches_left = rng.random_range(6..14);
        }
        self.lubricant_batches_left -= 1;
    }

    /// Binder solution is made up for each batch and must be used within three days.
    pub(crate) fn make_binder(&mut self, clock: &Clock, rng: &mut SmallRng) {
        let seq = self.next_seq();
        self.binder = Lot {
            id: format!("BS{}-{:02}", clock.local_yymmdd(), seq % 100),
            expires_at: clock.now + uniform(rng, 2.0, 2.9) * 86_400.0,
        };
    }

    /// Coating suspension is made up for each batch and must be used within two days.
    pub(crate) fn make_suspension(&mut self, clock: &Clock, rng: &mut SmallRng) {
        let seq = self.next_seq();
        self.suspension = Lot {
            id: format!("CS{}-{:02}", clock.local_yymmdd(), seq % 100),
            expires_at: clock.now + uniform(rng, 1.5, 1.95) * 86_400.0,
        };
    }

    /// Film used for `blisters`; an empty reel is spliced to a new one (a new lot).
    pub(crate) fn use_film(&mut self, blisters: f64, clock: &Clock, rng: &mut SmallRng) {
        let used = blisters * FILM_PER_BLISTER_M;
        for reel in [&mut self.pvc, &mut self.foil] {
            reel.remaining_m -= used;
        }
        if self.pvc.remaining_m < 20.0 {
            let seq = self.next_seq();
            self.pvc.splice(&clock.local_yymmdd(), seq, rng);
        }
        if self.foil.remaining_m < 20.0 {
            let seq = self.next_seq();
            self.foil.splice(&clock.local_yymmdd(), seq, rng);
        }
    }
}

fn new_api_lot(product: &Product, yymmdd: &str, seq: u32, now: f64, rng: &mut SmallRng) -> ApiLot {
    let potency_coa = (99.6 + gauss(rng, 0.6)).clamp(97.5, 101.5);
    ApiLot {
        lot: Lot {
            id: format!("{}{}{:04}", product.api, &yymmdd[..2], seq),
            expires_at: now + uniform(rng, 300.0, 1100.0) * 86_400.0,
        },
        api: product.api,
        potency_coa,
        // The certificate's assay has its own error; what goes into the batch is the truth.
        potency_true: potency_coa + gauss(rng, 0.3),
        batches_left: rng.random_range(2..7),
    }
}

impl Reel {
    fn new(
        prefix: &'static str,
        length_m: f64,
        yymmdd: &str,
        seq: u32,
        rng: &mut SmallRng,
    ) -> Self {
        Reel {
            lot: Lot {
                id: format!("{prefix}{}{:05}", &yymmdd[..2], seq),
                expires_at: f64::INFINITY,
            },
            remaining_m: uniform(rng, 0.1, 1.0) * length_m,
            length_m,
            prefix,
        }
    }

    fn splice(&mut self, yymmdd: &str, seq: u32, rng: &mut SmallRng) {
        self.lot.id = format!("{}{}{:05}", self.prefix, &yymmdd[..2], seq);
        self.remaining_m = self.length_m * uniform(rng, 0.98, 1.0);
    }
}
