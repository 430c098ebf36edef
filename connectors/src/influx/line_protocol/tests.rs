//! The encoder checked against a small parser that reads line protocol the way InfluxDB
//! 1.x does (`models/points.go`: a character after `\` is escaped; tags unescape only
//! `\,`, `\ `, `\=`; strings unescape `\\` and `\"`; a line feed inside quotes is data).

use std::sync::Arc;

use chrono::DateTime;
use model::{Category, Quality, Sample, Tag, Value};
use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone, PartialEq)]
enum Parsed {
    Float(f64),
    Int(i64),
    UInt(u64),
    Bool(bool),
    Str(String),
}

#[derive(Debug)]
struct ParsedLine {
    measurement: String,
    tags: Vec<(String, String)>,
    fields: Vec<(String, Parsed)>,
    time: i64,
}

/// Where 1.x's `scanLine` ends the line that starts at 0: the body of a request is cut
/// into points here, so an encoded line must end exactly at its end.
fn scan_line(b: &[u8]) -> usize {
    let (mut i, mut quoted, mut fields, mut equals, mut commas) = (0, false, false, 0, 0);
    while i < b.len() {
        if b[i] == b'\\' && i + 2 < b.len() {
            i += 2;
            continue;
        }
        if b[i] == b' ' {
            fields = true;
        }
        if fields {
            if !quoted && b[i] == b'=' {
                i += 1;
                equals += 1;
                continue;
            } else if !quoted && b[i] == b',' {
                i += 1;
                commas += 1;
                continue;
            } else if b[i] == b'"' && equals > commas {
                i += 1;
                quoted = !quoted;
                continue;
            }
        }
        if b[i] == b'\n' && !quoted {
            break;
        }
        i += 1;
    }
    i
}

fn unescape(s: &[u8], codes: &[u8]) -> String {
    let mut v = s.to_vec();
    // Like Go's sequential bytes.Replace per code.
    for &c in codes {
        let mut out = Vec::with_capacity(v.len());
        let mut i = 0;
        while i < v.len() {
            if v[i] == b'\\' && i + 1 < v.len() && v[i + 1] == c {
                out.push(c);
                i += 2;
            } else {
                out.push(v[i]);
                i += 1;
            }
        }
        v = out;
    }
    String::from_utf8(v).expect("utf-8")
}

fn parse_line(line: &str) -> Result<ParsedLine, String> {
    let b = line.as_bytes();
    if scan_line(b) != b.len() {
        return Err("line ends early (unescaped line feed)".into());
    }
    // Measurement.
    let mut i = 0;
    if b.is_empty() || b[0] == b',' || b[0] == b'#' {
        return Err("missing measurement".into());
    }
    let in_tags;
    loop {
        i += 1;
        if i >= b.len() {
            return Err("missing fields".into());
        }
        if b[i - 1] == b'\\' {
            continue;
        }
        if b[i] == b',' {
            in_tags = true;
            break;
        }
        if b[i] == b' ' {
            in_tags = false;
            break;
        }
    }
    let measurement = unescape(&b[..i], b", ");
    let mut tags = Vec::new();
    if in_tags {
        i += 1;
        loop {
            let key_start = i;
            if i >= b.len() || matches!(b[i], b' ' | b',' | b'=') {
                return Err("missing tag key".into());
            }
            loop {
                i += 1;
                if i >= b.len() || (matches!(b[i], b' ' | b',') && b[i - 1] != b'\\') {
                    return Err("missing tag value".into());
                }
                if b[i] == b'=' && b[i - 1] != b'\\' {
                    break;
                }
            }
            let key = unescape(&b[key_start..i], b", =");
            i += 1;
            let value_start = i;
            if i >= b.len() || matches!(b[i], b',' | b' ') {
                return Err("missing tag value".into());
            }
            let more;
            loop {
                i += 1;
                if i >= b.len() {
                    return Err("missing fields".into());
                }
                if b[i] == b'=' && b[i - 1] != b'\\' {
                    return Err("invalid tag format".into());
                }
                if b[i] == b',' && b[i - 1] != b'\\' {
                    more = true;
                    break;
                }
                if b[i] == b' ' && b[i - 1] != b'\\' {
                    more = false;
                    break;
                }
            }
            tags.push((key, unescape(&b[value_start..i], b", =")));
            if !more {
                break;
            }
            i += 1;
        }
    }
    // Fields: split on commas outside quotes, up to the first space outside quotes.
    i += 1;
    let fields_start = i;
    let mut quoted = false;
    let mut parts = Vec::new();
    let mut part_start = i;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() {
            i += 2;
            continue;
        }
        if b[i] == b'"' {
            quoted = !quoted;
        } else if !quoted && b[i] == b',' {
            parts.push(&line[part_start..i]);
            part_start = i + 1;
        } else if !quoted && b[i] == b' ' {
            break;
        }
        i += 1;
    }
    if quoted || i == fields_start {
        return Err("bad fields".into());
    }
    parts.push(&line[part_start..i]);
    let mut fields = Vec::new();
    for part in parts {
        let pb = part.as_bytes();
        let eq = (1..pb.len())
            .find(|&j| pb[j] == b'=' && pb[j - 1] != b'\\')
            .ok_or("field without =")?;
        let key = decode_tag_text(&unescape(&pb[..eq], b", =")).into_owned();
        let raw = &part[eq + 1..];
        let value = if let Some(inner) = raw.strip_prefix('"') {
            let inner = inner.strip_suffix('"').ok_or("unterminated string")?;
            let ib = inner.as_bytes();
            let mut out = Vec::new();
            let mut j = 0;
            while j < ib.len() {
                if ib[j] == b'\\' && j + 1 < ib.len() && matches!(ib[j + 1], b'\\' | b'"') {
                    out.push(ib[j + 1]);
                    j += 2;
                } else {
                    out.push(ib[j]);
                    j += 1;
                }
            }
            Parsed::Str(String::from_utf8(out).map_err(|e| e.to_string())?)
        } else if let Some(n) = raw.strip_suffix('i') {
            Parsed::Int(n.parse().map_err(|e| format!("{e}: {raw}"))?)
        } else if let Some(n) = raw.strip_suffix('u') {
            Parsed::UInt(n.parse().map_err(|e| format!("{e}: {raw}"))?)
        } else if raw == "true" || raw == "false" {
            Parsed::Bool(raw == "true")
        } else {
            Parsed::Float(raw.parse().map_err(|e| format!("{e}: {raw}"))?)
        };
        fields.push((key, value));
    }
    let time = line[i..]
        .trim_start_matches(' ')
        .parse()
        .map_err(|e| format!("bad timestamp: {e}"))?;
    Ok(ParsedLine {
        measurement,
        tags,
        fields,
        time,
    })
}

fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(vec![
            ',', ' ', '=', '"', '\'', '\\', '\n', '\r', '\t', '%', '5', 'C', '0', 'A', 'D', '2',
            '#', 'é', '°', '\u{0}',
        ]),
        1 => any::<char>(),
    ]
}

fn tricky_string() -> impl Strategy<Value = String> {
    prop::collection::vec(tricky_char(), 0..10).prop_map(String::from_iter)
}

fn category() -> impl Strategy<Value = Category> {
    prop::sample::select(Category::ALL.to_vec())
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<f64>().prop_map(Value::Float),
        prop::sample::select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            1e300
        ])
        .prop_map(Value::Float),
        any::<i64>().prop_map(Value::Int),
        any::<bool>().prop_map(Value::Bool),
        tricky_string().prop_map(Value::Text),
        Just(Value::Null),
    ]
}

prop_compose! {
    fn sample()(
        site in tricky_string(), area in tricky_string(), line in tricky_string(),
        equipment in tricky_string(), signal in tricky_string(), unit in tricky_string(),
        category in category(), value in value(), quality in any::<u32>(),
        ns in MIN_TIME_NS..=MAX_TIME_NS, backfilled in any::<bool>(),
    ) -> Sample {
        let tag = Arc::new(Tag { site, area, line, equipment, signal, category, unit });
        let t = DateTime::from_timestamp_nanos(ns);
        Sample { tag, value, quality: Quality(quality), source_ts: t, server_ts: None, received_ts: t, backfilled }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn tag_text_round_trips(s in tricky_string()) {
        let encoded = encode_tag_text(&s);
        prop_assert!(!encoded.contains(['\\', '\n', '\r']));
        prop_assert_eq!(decode_tag_text(&encoded), s.as_str());
    }

    #[test]
    fn a_sample_survives_line_protocol(s in sample()) {
        let line = sample_line(&s);
        let p = parse_line(&line).map_err(|e| TestCaseError::fail(format!("{e} in {line:?}")))?;
        prop_assert_eq!(p.measurement.as_str(), s.tag.category.as_str());
        let t = &s.tag;
        let expected: Vec<(String, String)> = [
            ("area", &t.area), ("equipment", &t.equipment), ("line", &t.line),
            ("signal", &t.signal), ("site", &t.site), ("unit", &t.unit),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
        let decoded: Vec<(String, String)> = p
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), decode_tag_text(v).into_owned()))
            .collect();
        prop_assert_eq!(decoded, expected);
        prop_assert_eq!(p.time, s.source_ts.timestamp_nanos_opt().unwrap());
        let quality = (FIELD_QUALITY.to_string(), Parsed::Int(s.quality.0 as i64));
        let mut fields = p.fields.clone();
        if s.backfilled {
            prop_assert_eq!(fields.pop(), Some((FIELD_BACKFILLED.to_string(), Parsed::Bool(true))));
        }
        prop_assert_eq!(
            fields.pop(),
            Some((FIELD_RECEIVED_NS.to_string(), Parsed::Int(s.received_ts.timestamp_nanos_opt().unwrap())))
        );
        if s.value.is_null() {
            prop_assert_eq!(&fields, &vec![quality]);
        } else {
            prop_assert_eq!(fields.len(), 2);
            prop_assert_eq!(&fields[1], &quality);
        }
        let (key, value) = &p.fields[0];
        match &s.value {
            Value::Null => {}
            Value::Text(text) => {
                prop_assert_eq!(key.as_str(), FIELD_TEXT);
                prop_assert_eq!(value, &Parsed::Str(text.clone()));
            }
            Value::Float(f) if f.is_nan() => {
                prop_assert_eq!(key.as_str(), FIELD_NONFINITE);
                prop_assert_eq!(value, &Parsed::Str("NaN".into()));
            }
            Value::Float(f) if f.is_infinite() => {
                prop_assert_eq!(key.as_str(), FIELD_NONFINITE);
                let sign = if *f > 0.0 { "+Inf" } else { "-Inf" };
                prop_assert_eq!(value, &Parsed::Str(sign.into()));
            }
            other => {
                prop_assert_eq!(key.as_str(), FIELD_VALUE);
                let Parsed::Float(f) = value else {
                    return Err(TestCaseError::fail(format!("not a float: {value:?} in {line:?}")));
                };
                prop_assert_eq!(f.to_bits(), other.as_f64().unwrap().to_bits());
            }
        }
        let (series, time) = series_and_time(&line);
        prop_assert_eq!(time, Some(p.time));
        if !s.tag.signal.is_empty() {
            prop_assert_eq!(path_of_series(series), Some(s.tag.path()));
        }
        prop_assert!(line.starts_with(series) && line[series.len()..].starts_with(' '));
    }

    #[test]
    fn a_raw_point_survives_line_protocol(
        measurement in tricky_string().prop_filter("valid", |m| !m.is_empty() && !m.starts_with('#')),
        tags in prop::collection::vec((tricky_string().prop_filter("key", |k| !k.is_empty()), tricky_string()), 0..4),
        text in tricky_string(),
        int in any::<i64>(),
        uint in any::<u64>(),
        ns in MIN_TIME_NS..=MAX_TIME_NS,
    ) {
        let mut unique = std::collections::BTreeMap::new();
        for (k, v) in tags {
            unique.insert(k, v);
        }
        let point = Point {
            measurement: measurement.clone(),
            tags: unique.clone().into_iter().collect(),
            fields: vec![
                ("a b,c=d".into(), FieldValue::Str(text.clone())),
                ("i".into(), FieldValue::Int(int)),
                ("u".into(), FieldValue::UInt(uint)),
                ("ok".into(), FieldValue::Bool(true)),
            ],
            time_ns: ns,
        };
        let line = point.to_line().unwrap();
        let p = parse_line(&line).map_err(|e| TestCaseError::fail(format!("{e} in {line:?}")))?;
        prop_assert_eq!(decode_tag_text(&p.measurement), measurement.as_str());
        let tags: Vec<(String, String)> = p
            .tags
            .iter()
            .map(|(k, v)| (decode_tag_text(k).into_owned(), decode_tag_text(v).into_owned()))
            .collect();
        let mut expected: Vec<(String, String)> = unique.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        expected.sort_by(|a, b| encode_tag_text(&a.0).as_bytes().cmp(encode_tag_text(&b.0).as_bytes()));
        prop_assert_eq!(tags, expected);
        prop_assert_eq!(
            p.fields,
            vec![
                ("a b,c=d".to_string(), Parsed::Str(text)),
                ("i".to_string(), Parsed::Int(int)),
                ("u".to_string(), Parsed::UInt(uint)),
                ("ok".to_string(), Parsed::Bool(true)),
            ]
        );
        prop_assert_eq!(p.time, ns);
    }
}

#[test]
fn empty_tags_are_omitted_and_a_plain_sample_reads_as_expected() {
    let tag = Arc::new(Tag {
        site: "shenzhen".into(),
        area: "osd".into(),
        line: "line-1".into(),
        equipment: "press 01".into(),
        signal: "force,kN=max".into(),
        category: Category::Machine,
        unit: String::new(),
    });
    let t = DateTime::from_timestamp_nanos(1_700_000_000_123_456_789);
    let s = Sample {
        tag,
        value: Value::Int(3),
        quality: Quality::BAD_NODE_ID_UNKNOWN,
        source_ts: t,
        server_ts: None,
        received_ts: t,
        backfilled: false,
    };
    assert_eq!(
        sample_line(&s),
        r"machine,area=osd,equipment=press\ 01,line=line-1,signal=force\,kN\=max,site=shenzhen value=3.0,quality=2150891520i,received_ns=1700000000123456789i 1700000000123456789"
    );
}

#[test]
fn percent_stays_readable_unless_it_looks_like_a_code() {
    assert_eq!(encode_tag_text("%RH"), "%RH");
    assert_eq!(encode_tag_text(r"C:\temp"), "C:%5Ctemp");
    assert_eq!(encode_tag_text("%5C"), "%255C");
    assert_eq!(decode_tag_text("%255C"), "%5C");
    assert_eq!(encode_tag_text("a\nb\r"), "a%0Ab%0D");
}

#[test]
fn a_raw_point_rejects_what_influx_would_misread() {
    let p = |m: &str, fields: Vec<(String, FieldValue)>| Point {
        measurement: m.into(),
        tags: vec![],
        fields,
        time_ns: 0,
    };
    let one = || vec![("v".to_string(), FieldValue::Float(1.0))];
    assert_eq!(p("", one()).to_line(), Err(PointError::EmptyMeasurement));
    assert!(matches!(
        p("#x", one()).to_line(),
        Err(PointError::CommentMeasurement(_))
    ));
    assert!(matches!(
        p("m", vec![]).to_line(),
        Err(PointError::NoFields(_))
    ));
    assert!(matches!(
        p("m", vec![("v".into(), FieldValue::Float(f64::NAN))]).to_line(),
        Err(PointError::NonFiniteField { .. })
    ));
}
