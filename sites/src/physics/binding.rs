//! How each signal of the site file gets its value: from the unit, room or line control the
//! model has for its equipment, or — for a signal the model does not know — a generic value
//! inside the signal's range that drifts slowly, so that every signal is served.

use model::{DataType, Range, Signal, Value};
use rand::rngs::SmallRng;

use super::stochastic::{uniform, Noise};

#[derive(Debug, Clone)]
pub(crate) enum Source {
    Machine { line: usize, machine: usize },
    Room { line: usize, room: usize },
    Control { line: usize },
    Generic(Generic),
}

#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub(crate) source: Source,
    pub(crate) line: String,
    pub(crate) equipment: String,
    pub(crate) id: String,
    pub(crate) data_type: DataType,
    pub(crate) limits: Option<Range>,
    /// Set-points (`_sp`) are written by clients; everything else is read-only.
    pub(crate) writable: bool,
}

impl Binding {
    pub(crate) fn path(&self) -> String {
        format!("{}/{}/{}", self.line, self.equipment, self.id)
    }
}

/// A signal the model has no physics for: the middle of its specification (or engineering)
/// range with a slow oscillation and a little noise; a set-point holds still.
#[derive(Debug, Clone)]
pub(crate) struct Generic {
    base: f64,
    amplitude: f64,
    period: f64,
    phase: f64,
    noise: f64,
    pub(crate) held: Option<f64>,
}

impl Generic {
    pub(crate) fn new(signal: &Signal, rng: &mut SmallRng) -> Self {
        let (low, high) = signal
            .spec
            .or(signal.limits)
            .map_or((0.0, 100.0), |r| (r.low, r.high));
        let base = (low + high) / 2.0;
        let span = (high - low).abs();
        let set_point = signal.id.ends_with("_sp");
        Generic {
            base,
            amplitude: if set_point {
                0.0
            } else {
                0.05 * span * uniform(rng, 0.5, 1.0)
            },
            period: uniform(rng, 1.0, 6.0) * 3600.0,
            phase: uniform(rng, 0.0, std::f64::consts::TAU),
            noise: if set_point { 0.0 } else { 0.003 * span },
            held: set_point.then_some(base),
        }
    }

    pub(crate) fn value(&self, now: f64, data_type: DataType, n: &mut Noise) -> Value {
        match data_type {
            DataType::String => Value::Text(String::new()),
            DataType::Bool => Value::Bool(false),
            DataType::Double | DataType::Int => {
                let x = match self.held {
                    Some(x) => x,
                    None => {
                        let wave = (std::f64::consts::TAU * now / self.period + self.phase).sin();
                        n.add(self.base + self.amplitude * wave, self.noise)
                    }
                };
                Value::Float(x)
            }
        }
    }
}

/// The value in the signal's declared data type, whatever the model produced.
pub(crate) fn coerce(value: Value, data_type: DataType) -> Value {
    let finite = |x: f64| if x.is_finite() { x } else { 0.0 };
    match (data_type, value) {
        (DataType::Double, Value::Float(x)) => Value::Float(finite(x)),
        (DataType::Double, Value::Int(i)) => Value::Float(i as f64),
        (DataType::Double, Value::Bool(b)) => Value::Float(if b { 1.0 } else { 0.0 }),
        (DataType::Double, Value::Text(s)) => Value::Float(finite(s.trim().parse().unwrap_or(0.0))),
        (DataType::Int, Value::Int(i)) => Value::Int(i),
        (DataType::Int, Value::Float(x)) => Value::Int(finite(x).round() as i64),
        (DataType::Int, Value::Bool(b)) => Value::Int(i64::from(b)),
        (DataType::Int, Value::Text(s)) => Value::Int(s.trim().parse().unwrap_or(0)),
        (DataType::Bool, Value::Bool(b)) => Value::Bool(b),
        (DataType::Bool, Value::Int(i)) => Value::Bool(i != 0),
        (DataType::Bool, Value::Float(x)) => Value::Bool(x != 0.0),
        (DataType::Bool, Value::Text(s)) => {
            Value::Bool(matches!(s.trim(), "true" | "1" | "TRUE" | "True"))
        }
        (_, Value::Null) => Value::Null,
        (DataType::String, Value::Text(s)) => Value::Text(s),
        (DataType::String, other) => Value::Text(other.to_string()),
    }
}

/// A written value as a number, if it is one.
pub(crate) fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Text(s) => s.trim().parse::<f64>().ok(),
        other => other.as_f64(),
    }
    .filter(|x| x.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_take_the_declared_type() {
        assert_eq!(coerce(Value::Float(2.6), DataType::Int), Value::Int(3));
        assert_eq!(coerce(Value::Int(7), DataType::Double), Value::Float(7.0));
        assert_eq!(
            coerce(Value::Float(f64::NAN), DataType::Double),
            Value::Float(0.0)
        );
        assert_eq!(
            coerce(Value::Bool(true), DataType::String),
            Value::Text("true".into())
        );
        assert_eq!(number(&Value::Text(" 4.5 ".into())), Some(4.5));
        assert_eq!(number(&Value::Text("x".into())), None);
    }
}
