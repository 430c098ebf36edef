//! Fuzzing the site-file loader (proptest as the fuzzer: cargo-fuzz needs a nightly
//! compiler): random text, and valid site files with bytes and tokens changed, must give a
//! site or an error naming the file — never a panic. `FUZZ_CASES` runs more.

use std::path::PathBuf;

use proptest::{
    prelude::*,
    test_runner::{Config, TestRunner},
};

fn cases(default: u32) -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

fn sites_dir() -> PathBuf {
    // Cargo's run-time value: a reused binary's compile-time path may be another checkout.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from)
        .join("../sites")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(sites_dir().join(name)).unwrap()
}

/// Loads `text` as `fuzz.toml` with `templates` as its equipment-type file; any error
/// must name one of the two.
fn load(text: &str, templates: &str) -> Result<(), TestCaseError> {
    let t = templates.to_string();
    match pharmatwin_model::load_site_text("fuzz.toml", text, move |_| {
        Ok(("equipment-types.toml".to_string(), t.clone()))
    }) {
        Ok(_) => Ok(()),
        Err(e) => {
            let msg = e.to_string();
            prop_assert!(
                msg.contains("fuzz.toml") || msg.contains("equipment-types.toml"),
                "error names no file: {msg}"
            );
            Ok(())
        }
    }
}

/// Tokens that make TOML and our keys go wrong in interesting ways.
const TOKENS: &[&str] = &[
    "=",
    "[",
    "]",
    "[[",
    "]]",
    "\"",
    "'",
    "\n",
    "{",
    "}",
    ",",
    "#",
    "-1",
    "0",
    "1e309",
    "nan",
    "inf",
    "true",
    "\"\"",
    "ns=2;s=",
    "i=",
    "opc.tcp://",
    "\u{0}",
    "\u{feff}",
    "é",
    "中",
    "99999999999999999999",
    "site",
    "line",
    "equipment",
    "signal",
    "category",
    "unit",
];

#[derive(Debug, Clone)]
enum Edit {
    Byte(usize, u8),
    Delete(usize, usize),
    Insert(usize, usize),
    Truncate(usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(
        prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(p, b)| Edit::Byte(p, b)),
            (any::<usize>(), 1usize..64).prop_map(|(p, n)| Edit::Delete(p, n)),
            (any::<usize>(), 0..TOKENS.len()).prop_map(|(p, t)| Edit::Insert(p, t)),
            any::<usize>().prop_map(Edit::Truncate),
        ],
        1..6,
    )
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut b = text.as_bytes().to_vec();
    for e in edits {
        let at = |p: usize, len: usize| p % (len + 1);
        match *e {
            Edit::Byte(p, v) => {
                if !b.is_empty() {
                    let i = p % b.len();
                    b[i] = v;
                }
            }
            Edit::Delete(p, n) => {
                let i = at(p, b.len());
                let j = (i + n).min(b.len());
                b.drain(i..j);
            }
            Edit::Insert(p, t) => {
                let i = at(p, b.len());
                b.splice(i..i, TOKENS[t].bytes());
            }
            Edit::Truncate(p) => {
                let i = at(p, b.len());
                b.truncate(i);
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn runner(n: u32) -> TestRunner {
    TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn changed_site_files_load_or_name_the_file() {
    let site = read("anhui.toml");
    let templates = read("equipment-types.toml");
    load(&site, &templates).unwrap();
    let n = cases(1_500);
    let runs = std::cell::Cell::new(0u64);
    runner(n)
        .run(&(edits(), any::<bool>()), |(e, in_templates)| {
            runs.set(runs.get() + 1);
            if in_templates {
                load(&site, &apply(&templates, &e))
            } else {
                load(&apply(&site, &e), &templates)
            }
        })
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "fuzz: site loader: {} changed site files, no panic",
        runs.get()
    );
}

#[test]
fn random_text_loads_or_names_the_file() {
    let templates = read("equipment-types.toml");
    let n = cases(20_000);
    let runs = std::cell::Cell::new(0u64);
    let text = prop_oneof![
        any::<String>(),
        prop::collection::vec(0..TOKENS.len(), 0..40)
            .prop_map(|ts| ts.into_iter().map(|t| TOKENS[t]).collect::<String>()),
    ];
    runner(n)
        .run(&text, |t| {
            runs.set(runs.get() + 1);
            load(&t, &templates)
        })
        .unwrap_or_else(|e| panic!("{e}"));
    eprintln!("fuzz: site loader: {} random texts, no panic", runs.get());
}
