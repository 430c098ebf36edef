//! Nelson / Western Electric run rules, over a whole series ([`evaluate`]) and
//! one point at a time ([`RuleEngine`]).

use serde::{Deserialize, Serialize};

use super::{check_finite, SpcError};

/// Center line and sigma of the plotted statistic (an individual value or a
/// subgroup mean), which define the control limits (±3σ) and the zones (±1σ,
/// ±2σ) the rules test against.
///
/// Every boundary is computed as `center ± k * sigma` in one place, so the
/// limits a chart shows ([`Zones::ucl`], [`Zones::lcl`]) are bit for bit the
/// ones rule 1 tests. Build with [`Zones::new`], which checks the values; the
/// fields are public for (de)serialization, and zones set by hand to a sigma
/// that is not positive give meaningless zones but never a panic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Zones {
    /// Center line.
    pub center: f64,
    /// Sigma of the plotted statistic.
    pub sigma: f64,
}

impl Zones {
    /// Zones around `center` with width `sigma` (finite, > 0).
    pub fn new(center: f64, sigma: f64) -> Result<Self, SpcError> {
        if !center.is_finite() || !sigma.is_finite() || sigma <= 0.0 {
            return Err(SpcError::Zones { center, sigma });
        }
        Ok(Self { center, sigma })
    }

    /// `center + k·sigma` (k = 1, 2, 3 are the zone boundaries above).
    pub fn upper(&self, k: u8) -> f64 {
        self.center + f64::from(k) * self.sigma
    }

    /// `center − k·sigma`.
    pub fn lower(&self, k: u8) -> f64 {
        self.center - f64::from(k) * self.sigma
    }

    /// Upper control limit, `center + 3σ`.
    pub fn ucl(&self) -> f64 {
        self.upper(3)
    }

    /// Lower control limit, `center − 3σ`.
    pub fn lcl(&self) -> f64 {
        self.lower(3)
    }

    fn classifier(&self) -> Classifier {
        Classifier {
            center: self.center,
            upper: [self.upper(1), self.upper(2), self.upper(3)],
            lower: [self.lower(1), self.lower(2), self.lower(3)],
        }
    }
}

/// Where a point lies: `side` is +1 above the center line, −1 below, 0 on it;
/// `level` is how many of the 1σ, 2σ, 3σ boundaries on its side it is strictly
/// beyond (0 = within 1σ, boundary included; 3 = beyond the control limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Class {
    side: i8,
    level: u8,
}

impl Class {
    fn beyond(self, level: u8, side: i8) -> bool {
        self.side == side && self.level >= level
    }
}

#[derive(Debug, Clone, Copy)]
struct Classifier {
    center: f64,
    upper: [f64; 3],
    lower: [f64; 3],
}

impl Classifier {
    fn class(&self, x: f64) -> Class {
        if x > self.center {
            Class {
                side: 1,
                level: self.upper.iter().filter(|&&b| x > b).count() as u8,
            }
        } else if x < self.center {
            Class {
                side: -1,
                level: self.lower.iter().filter(|&&b| x < b).count() as u8,
            }
        } else {
            Class { side: 0, level: 0 }
        }
    }
}

/// The eight Nelson rules, numbered as Nelson (1984) numbers them.
///
/// Conventions (the same in [`evaluate`] and [`RuleEngine`]):
/// * **Boundaries.** "Beyond kσ" is strict: a point exactly on a zone boundary
///   or on a control limit is *not* beyond it, and counts as *within* it for
///   rule 7. A point exactly on the center line is on neither side: it breaks
///   a rule 2 run and never counts for rules 5 and 6.
/// * **Ties.** Rules 3 and 4 look at the sign of successive differences; two
///   equal consecutive values (a difference of 0) break the run.
/// * **Reporting.** A violation is reported at every point whose window
///   completes the pattern: a run of 11 points on one side gives rule 2
///   violations at its 9th, 10th and 11th point. [`Violation::involved`]
///   lists the points of the window that make the pattern.
/// * **k of m (rules 5, 6).** The point reported must itself be one of the k
///   points beyond, so a point inside the zones is never flagged; the
///   involved points are only the points beyond. At the start of a series the window is the
///   points there are (two points beyond 2σ at indexes 0 and 1 give rule 5 at
///   1), since whatever preceded them, any window of m holding them would fire.
/// * **Dispersion charts** (MR, R, S) are skewed, so only rule 1 applies to them
///   (see [`super::ControlChart`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
#[repr(u8)]
pub enum Rule {
    /// 1: one point beyond 3σ (outside the control limits).
    BeyondLimits = 1,
    /// 2: nine points in a row on one side of the center line (eight in the
    /// Western Electric set; see [`RuleSet::with_same_side_run`]).
    SameSide = 2,
    /// 3: six points in a row steadily increasing or decreasing (five strict
    /// increases or five strict decreases).
    Trend = 3,
    /// 4: fourteen points in a row alternating up and down (thirteen non-zero
    /// differences of alternating sign).
    Alternating = 4,
    /// 5: two out of three points in a row beyond 2σ on the same side.
    TwoOfThree = 5,
    /// 6: four out of five points in a row beyond 1σ on the same side.
    FourOfFive = 6,
    /// 7: fifteen points in a row within 1σ of the center line (either side).
    Stratification = 7,
    /// 8: eight points in a row beyond 1σ, either side (they need not be on
    /// both sides).
    Mixture = 8,
}

impl Rule {
    /// All rules, in number order.
    pub const ALL: [Rule; 8] = [
        Rule::BeyondLimits,
        Rule::SameSide,
        Rule::Trend,
        Rule::Alternating,
        Rule::TwoOfThree,
        Rule::FourOfFive,
        Rule::Stratification,
        Rule::Mixture,
    ];

    /// Nelson's number, 1..=8.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The rule with Nelson's number `n`.
    pub fn from_number(n: u8) -> Result<Self, SpcError> {
        match n {
            1..=8 => Ok(Self::ALL[usize::from(n - 1)]),
            _ => Err(SpcError::Rule(format!(
                "no Nelson rule {n} (rules are 1..=8)"
            ))),
        }
    }

    /// Short description for reports.
    pub fn description(self) -> &'static str {
        match self {
            Rule::BeyondLimits => "one point beyond 3 sigma",
            Rule::SameSide => "run on one side of the center line",
            Rule::Trend => "six points steadily increasing or decreasing",
            Rule::Alternating => "fourteen points alternating up and down",
            Rule::TwoOfThree => "two of three beyond 2 sigma, same side",
            Rule::FourOfFive => "four of five beyond 1 sigma, same side",
            Rule::Stratification => "fifteen points within 1 sigma",
            Rule::Mixture => "eight points beyond 1 sigma, either side",
        }
    }
}

impl From<Rule> for u8 {
    fn from(rule: Rule) -> u8 {
        rule.number()
    }
}

impl TryFrom<u8> for Rule {
    type Error = SpcError;

    fn try_from(n: u8) -> Result<Self, SpcError> {
        Rule::from_number(n)
    }
}

/// Which rules to apply, and the run length of rule 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "RuleSetRepr", try_from = "RuleSetRepr")]
pub struct RuleSet {
    /// Bit `r − 1` set = rule `r` enabled.
    mask: u8,
    same_side_run: u8,
}

/// Serialized form of a [`RuleSet`]: `{"rules": [1, 2, 5, 6], "same_side_run": 8}`.
#[derive(Serialize, Deserialize)]
struct RuleSetRepr {
    rules: Vec<Rule>,
    same_side_run: u8,
}

impl From<RuleSet> for RuleSetRepr {
    fn from(set: RuleSet) -> Self {
        Self {
            rules: set.rules().collect(),
            same_side_run: set.same_side_run,
        }
    }
}

impl TryFrom<RuleSetRepr> for RuleSet {
    type Error = SpcError;

    fn try_from(repr: RuleSetRepr) -> Result<Self, SpcError> {
        repr.rules
            .into_iter()
            .fold(RuleSet::none(), RuleSet::with)
            .with_same_side_run(usize::from(repr.same_side_run))
    }
}

impl Default for RuleSet {
    fn default() -> Self {
        Self::nelson()
    }
}

impl RuleSet {
    /// Longest rule 2 run accepted: the engine's state covers the last 15
    /// points, the longest window of any rule (rule 7).
    pub const MAX_RUN: usize = 15;

    /// All eight Nelson rules, rule 2 with nine points.
    pub fn nelson() -> Self {
        Self {
            mask: 0xFF,
            same_side_run: 9,
        }
    }

    /// The Western Electric rules: 1, 5, 6 and rule 2 with eight points.
    pub fn western_electric() -> Self {
        Self {
            mask: 0,
            same_side_run: 8,
        }
        .with(Rule::BeyondLimits)
        .with(Rule::SameSide)
        .with(Rule::TwoOfThree)
        .with(Rule::FourOfFive)
    }

    /// No rule (add some with [`RuleSet::with`]); rule 2 run of nine.
    pub fn none() -> Self {
        Self {
            mask: 0,
            same_side_run: 9,
        }
    }

    /// This set plus `rule`.
    pub fn with(self, rule: Rule) -> Self {
        Self {
            mask: self.mask | 1 << (rule.number() - 1),
            ..self
        }
    }

    /// This set without `rule`.
    pub fn without(self, rule: Rule) -> Self {
        Self {
            mask: self.mask & !(1 << (rule.number() - 1)),
            ..self
        }
    }

    /// Sets the number of points in a row on one side that make rule 2
    /// (9 Nelson, 8 Western Electric, 7 in some guidelines); 2..=15.
    pub fn with_same_side_run(self, run: usize) -> Result<Self, SpcError> {
        if !(2..=Self::MAX_RUN).contains(&run) {
            return Err(SpcError::Rule(format!(
                "rule 2 run length {run} is outside 2..={}",
                Self::MAX_RUN
            )));
        }
        Ok(Self {
            same_side_run: run as u8,
            ..self
        })
    }

    /// Whether `rule` is applied.
    pub fn contains(&self, rule: Rule) -> bool {
        self.mask & (1 << (rule.number() - 1)) != 0
    }

    /// Rule 2 run length.
    pub fn same_side_run(&self) -> usize {
        usize::from(self.same_side_run)
    }

    /// The applied rules, in number order.
    pub fn rules(&self) -> impl Iterator<Item = Rule> {
        let set = *self;
        Rule::ALL.into_iter().filter(move |&r| set.contains(r))
    }
}

/// One rule violation: the rule, the point that completes its pattern and the
/// points that make the pattern.
///
/// `Copy` and allocation-free — the involved points are a bit set over the
/// 15-point window of the longest rule — because a drifting series violates
/// several rules at nearly every point. Serialized as
/// `{"rule": 2, "index": 8, "involved": [0, 1, …, 8]}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "ViolationRepr", try_from = "ViolationRepr")]
pub struct Violation {
    rule: Rule,
    index: usize,
    /// Bit j set = point `index − j` is involved (bit 0, `index`, always is).
    span: u16,
}

#[derive(Serialize, Deserialize)]
struct ViolationRepr {
    rule: Rule,
    index: usize,
    involved: Vec<usize>,
}

impl From<Violation> for ViolationRepr {
    fn from(v: Violation) -> Self {
        Self {
            rule: v.rule,
            index: v.index,
            involved: v.involved().collect(),
        }
    }
}

impl TryFrom<ViolationRepr> for Violation {
    type Error = SpcError;

    fn try_from(r: ViolationRepr) -> Result<Self, SpcError> {
        Violation::new(r.rule, r.index, &r.involved)
    }
}

impl Violation {
    /// Points a violation can span: the window of rule 7.
    pub const MAX_SPAN: usize = 15;

    /// A violation of `rule` completed at `index` by the points `involved`,
    /// which must include `index` and lie within the 15 points ending there.
    pub fn new(rule: Rule, index: usize, involved: &[usize]) -> Result<Self, SpcError> {
        let mut span = 0u16;
        for &j in involved {
            match index.checked_sub(j) {
                Some(back) if back < Self::MAX_SPAN => span |= 1 << back,
                _ => {
                    return Err(SpcError::Rule(format!(
                        "point {j} cannot be part of a violation completed at {index}"
                    )))
                }
            }
        }
        if span & 1 == 0 {
            return Err(SpcError::Rule(format!(
                "a violation completed at {index} must involve point {index}"
            )));
        }
        Ok(Self { rule, index, span })
    }

    /// The `len` points ending at `index`; `len` is 1..=15 and ≤ index + 1.
    pub(super) fn run(rule: Rule, index: usize, len: usize) -> Self {
        Self {
            rule,
            index,
            span: run_span(len),
        }
    }

    /// The rule.
    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// Index of the point that completes the pattern.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Indexes of the points that make the pattern, ascending; the last is
    /// [`Violation::index`].
    pub fn involved(&self) -> impl Iterator<Item = usize> {
        let Self { index, span, .. } = *self;
        (0..Self::MAX_SPAN)
            .rev()
            .filter(move |&back| span & (1 << back) != 0)
            .map(move |back| index - back)
    }

    /// The first point of the pattern.
    pub fn first(&self) -> usize {
        let back = u16::BITS - 1 - self.span.leading_zeros();
        self.index - back as usize
    }
}

/// Span of the last `len` points (1..=15).
fn run_span(len: usize) -> u16 {
    ((1u32 << len) - 1) as u16
}

const TREND_POINTS: usize = 6;
const ALTERNATING_POINTS: usize = 14;
const STRATIFICATION_POINTS: usize = 15;
const MIXTURE_POINTS: usize = 8;

/// Applies `rules` to a whole series, window by window as the rules are worded
/// (see [`Rule`] for the conventions). Violations are ordered by index, then
/// rule number.
pub fn evaluate(values: &[f64], zones: &Zones, rules: RuleSet) -> Result<Vec<Violation>, SpcError> {
    check_finite(values)?;
    let classifier = zones.classifier();
    let class: Vec<Class> = values.iter().map(|&x| classifier.class(x)).collect();
    // steps[i]: sign of the move into point i (0 for the first point).
    let steps: Vec<i8> = std::iter::once(0)
        .chain(values.windows(2).map(|p| step(p[0], p[1])))
        .collect();
    let series = Series {
        class: &class,
        steps: &steps,
        run: rules.same_side_run(),
    };
    let enabled: Vec<Rule> = rules.rules().collect();
    let mut out = Vec::new();
    for i in 0..values.len() {
        for &rule in &enabled {
            if let Some(v) = series.window_rule(rule, i) {
                out.push(v);
            }
        }
    }
    Ok(out)
}

/// What [`evaluate`] knows of each point.
struct Series<'a> {
    class: &'a [Class],
    steps: &'a [i8],
    run: usize,
}

/// The window of `len` points ending at `i`, if the series is long enough.
fn window<T>(items: &[T], i: usize, len: usize) -> Option<&[T]> {
    (i + 1 >= len).then(|| &items[i + 1 - len..=i])
}

impl Series<'_> {
    fn window_rule(&self, rule: Rule, i: usize) -> Option<Violation> {
        let class = self.class;
        let hit = |len| Violation::run(rule, i, len);
        match rule {
            Rule::BeyondLimits => (class[i].level == 3).then(|| hit(1)),
            Rule::SameSide => {
                let w = window(class, i, self.run)?;
                let side = w[0].side;
                (side != 0 && w.iter().all(|c| c.side == side)).then(|| hit(self.run))
            }
            Rule::Trend => {
                // The steps into the last five points of the six.
                let w = window(self.steps, i, TREND_POINTS - 1)?;
                (i + 1 >= TREND_POINTS && w[0] != 0 && w.iter().all(|&s| s == w[0]))
                    .then(|| hit(TREND_POINTS))
            }
            Rule::Alternating => {
                let w = window(self.steps, i, ALTERNATING_POINTS - 1)?;
                let alternating =
                    i + 1 >= ALTERNATING_POINTS && w[0] != 0 && w.windows(2).all(|s| s[1] == -s[0]);
                alternating.then(|| hit(ALTERNATING_POINTS))
            }
            Rule::TwoOfThree => k_of_m(rule, i, class, 2, 2, 3),
            Rule::FourOfFive => k_of_m(rule, i, class, 1, 4, 5),
            Rule::Stratification => {
                let w = window(class, i, STRATIFICATION_POINTS)?;
                w.iter()
                    .all(|c| c.level == 0)
                    .then(|| hit(STRATIFICATION_POINTS))
            }
            Rule::Mixture => {
                let w = window(class, i, MIXTURE_POINTS)?;
                w.iter().all(|c| c.level >= 1).then(|| hit(MIXTURE_POINTS))
            }
        }
    }
}

/// `k` of the last `m` points (fewer at the start) beyond `level`σ on the side
/// of point `i`, which must itself be one of them.
fn k_of_m(
    rule: Rule,
    i: usize,
    class: &[Class],
    level: u8,
    k: usize,
    m: usize,
) -> Option<Violation> {
    let side = class[i].side;
    if !class[i].beyond(level, side) {
        return None;
    }
    let start = (i + 1).saturating_sub(m);
    let mut span = 0u16;
    let mut count = 0;
    for (j, c) in (start..=i).zip(&class[start..=i]) {
        if c.beyond(level, side) {
            span |= 1 << (i - j);
            count += 1;
        }
    }
    (count >= k).then_some(Violation {
        rule,
        index: i,
        span,
    })
}

/// Sign of the step from `a` to `b`: +1 up, −1 down, 0 tie.
fn step(a: f64, b: f64) -> i8 {
    if b > a {
        1
    } else if b < a {
        -1
    } else {
        0
    }
}

/// Applies the rules one point at a time, for series evaluated as values arrive.
///
/// Each [`RuleEngine::push`] costs O(1) whatever the series length: instead of
/// the points, the engine keeps run counters and 5-point bit histories, which
/// hold exactly what the rules need of the last 15 points. For every point it
/// reports the violations [`evaluate`] reports at that index for the whole
/// series (tested on random series).
#[derive(Debug, Clone)]
pub struct RuleEngine {
    zones: Zones,
    classifier: Classifier,
    rules: RuleSet,
    /// Index the next pushed point gets.
    next: usize,
    last: Option<f64>,
    /// Lengths of the runs ending at the last point: on each side of the
    /// center line, within 1σ, beyond 1σ.
    above: usize,
    below: usize,
    within: usize,
    outside: usize,
    /// Consecutive strict increases / decreases ending at the last point.
    rises: usize,
    falls: usize,
    /// Consecutive alternating non-zero steps ending at the last point, and
    /// the sign of the last step.
    alternations: usize,
    last_step: i8,
    /// Bit j set = the point j pushes ago is beyond 1σ / 2σ above / below.
    above1: u8,
    below1: u8,
    above2: u8,
    below2: u8,
}

impl RuleEngine {
    /// An engine applying `rules` against `zones`, starting at index 0.
    pub fn new(zones: Zones, rules: RuleSet) -> Self {
        Self {
            zones,
            classifier: zones.classifier(),
            rules,
            next: 0,
            last: None,
            above: 0,
            below: 0,
            within: 0,
            outside: 0,
            rises: 0,
            falls: 0,
            alternations: 0,
            last_step: 0,
            above1: 0,
            below1: 0,
            above2: 0,
            below2: 0,
        }
    }

    /// The zones rules are tested against.
    pub fn zones(&self) -> Zones {
        self.zones
    }

    /// The applied rules.
    pub fn rules(&self) -> RuleSet {
        self.rules
    }

    /// Number of points pushed since creation or [`RuleEngine::reset`] (the
    /// index the next point gets).
    pub fn len(&self) -> usize {
        self.next
    }

    /// Whether no point was pushed yet.
    pub fn is_empty(&self) -> bool {
        self.next == 0
    }

    /// Forgets all points; the next one gets index 0.
    pub fn reset(&mut self) {
        *self = Self::new(self.zones, self.rules);
    }

    /// Adds the next point and returns the violations it completes. A
    /// non-finite value is refused and leaves the state unchanged.
    pub fn push(&mut self, value: f64) -> Result<Vec<Violation>, SpcError> {
        let mut out = Vec::new();
        self.push_into(value, &mut out)?;
        Ok(out)
    }

    /// [`RuleEngine::push`] appending to `out` (no allocation when nothing fires).
    pub fn push_into(&mut self, value: f64, out: &mut Vec<Violation>) -> Result<(), SpcError> {
        if !value.is_finite() {
            return Err(SpcError::NonFinite {
                index: self.next,
                value,
            });
        }
        let i = self.next;
        self.next += 1;
        let c = self.classifier.class(value);

        self.above = if c.side > 0 { self.above + 1 } else { 0 };
        self.below = if c.side < 0 { self.below + 1 } else { 0 };
        self.within = if c.level == 0 { self.within + 1 } else { 0 };
        self.outside = if c.level >= 1 { self.outside + 1 } else { 0 };
        let s = self.last.map_or(0, |prev| step(prev, value));
        self.rises = if s > 0 { self.rises + 1 } else { 0 };
        self.falls = if s < 0 { self.falls + 1 } else { 0 };
        self.alternations = match s {
            0 => 0,
            _ if self.last_step == -s => self.alternations + 1,
            _ => 1,
        };
        self.last_step = s;
        self.last = Some(value);
        let shift = |bits: u8, set: bool| bits << 1 | u8::from(set);
        self.above1 = shift(self.above1, c.beyond(1, 1));
        self.below1 = shift(self.below1, c.beyond(1, -1));
        self.above2 = shift(self.above2, c.beyond(2, 1));
        self.below2 = shift(self.below2, c.beyond(2, -1));

        // All conditions, then one pass in rule order: a loop over the enabled
        // rules with a match inside cost more than all the counters above.
        let run = self.rules.same_side_run();
        let (bits2, bits1) = if c.side > 0 {
            (self.above2, self.above1)
        } else {
            (self.below2, self.below1)
        };
        let last = |hit: bool, len: usize| hit.then(|| run_span(len));
        let found = [
            (Rule::BeyondLimits, last(c.level == 3, 1)),
            (
                Rule::SameSide,
                last(self.above >= run || self.below >= run, run),
            ),
            (
                Rule::Trend,
                last(
                    self.rises >= TREND_POINTS - 1 || self.falls >= TREND_POINTS - 1,
                    TREND_POINTS,
                ),
            ),
            (
                Rule::Alternating,
                last(
                    self.alternations >= ALTERNATING_POINTS - 1,
                    ALTERNATING_POINTS,
                ),
            ),
            (Rule::TwoOfThree, bits_of_window(c.level >= 2, bits2, 2, 3)),
            (Rule::FourOfFive, bits_of_window(c.level >= 1, bits1, 4, 5)),
            (
                Rule::Stratification,
                last(self.within >= STRATIFICATION_POINTS, STRATIFICATION_POINTS),
            ),
            (
                Rule::Mixture,
                last(self.outside >= MIXTURE_POINTS, MIXTURE_POINTS),
            ),
        ];
        for (rule, span) in found {
            if let Some(span) = span.filter(|_| self.rules.contains(rule)) {
                out.push(Violation {
                    rule,
                    index: i,
                    span,
                });
            }
        }
        Ok(())
    }
}

/// The engine's form of [`k_of_m`]: `bits` holds the history of the current
/// point's side (bit 0 = the current point); bits before the series start are
/// 0. Returns the involved points as a [`Violation`] span.
fn bits_of_window(current: bool, bits: u8, k: u32, m: usize) -> Option<u16> {
    let window = bits & ((1u8 << m) - 1);
    (current && window.count_ones() >= k).then_some(u16::from(window))
}
