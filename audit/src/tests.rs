use super::*;

fn entry(n: u32) -> Entry {
    Entry {
        user: format!("user{n}"),
        action: "alert.acknowledge".into(),
        target: format!("alert/{n}"),
        details: serde_json::json!({"comment": "checked on the floor, \"ok\"", "n": n}),
    }
}

fn trail_of(n: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let t = AuditTrail::open(&path).unwrap();
    for i in 1..=n {
        t.append(entry(i)).unwrap();
    }
    (dir, path)
}

#[test]
fn records_chain_and_survive_a_reopen() {
    let (_dir, path) = trail_of(3);
    let t = AuditTrail::open(&path).unwrap();
    t.append(entry(4)).unwrap();
    let r = verify(&path).unwrap();
    assert_eq!(r.len(), 4);
    assert_eq!(r[0].prev, GENESIS);
    for w in r.windows(2) {
        assert_eq!(w[1].prev, w[0].hash);
    }
    assert_eq!(r[3].seq, 4);
    assert_eq!(r[2].entry, entry(3));
}

#[test]
fn changing_any_byte_of_any_record_is_found_and_named() {
    let (_dir, path) = trail_of(5);
    let good = std::fs::read(&path).unwrap();
    let line_of = |pos: usize| good[..pos].iter().filter(|&&b| b == b'\n').count() + 1;
    // Every byte of the file except the newlines (removing one merges two records, which
    // is caught too, but names the first of them).
    for pos in 0..good.len() {
        if good[pos] == b'\n' {
            continue;
        }
        for delta in [1u8, 0x20] {
            let mut bad = good.clone();
            bad[pos] = bad[pos].wrapping_add(delta);
            if bad[pos] == b'\n' {
                continue;
            }
            std::fs::write(&path, &bad).unwrap();
            match verify(&path) {
                Err(AuditError::Broken { line, .. }) => {
                    assert_eq!(line, line_of(pos), "byte {pos} changed by {delta}")
                }
                other => panic!("byte {pos} (+{delta}) not detected: {other:?}"),
            }
        }
    }
}

#[test]
fn removing_or_reordering_records_is_found() {
    let (_dir, path) = trail_of(4);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let without_second = format!("{}\n{}\n{}\n", lines[0], lines[2], lines[3]);
    std::fs::write(&path, without_second).unwrap();
    assert!(matches!(
        verify(&path),
        Err(AuditError::Broken { line: 2, .. })
    ));
    let swapped = format!("{}\n{}\n{}\n{}\n", lines[1], lines[0], lines[2], lines[3]);
    std::fs::write(&path, swapped).unwrap();
    assert!(matches!(
        verify(&path),
        Err(AuditError::Broken { line: 1, .. })
    ));
    // A broken trail is not opened for appending.
    assert!(AuditTrail::open(&path).is_err());
}

#[test]
fn an_entry_without_a_user_is_refused() {
    let (_dir, path) = trail_of(0);
    let t = AuditTrail::open(&path).unwrap();
    let mut e = entry(1);
    e.user = " ".into();
    assert!(matches!(t.append(e), Err(AuditError::NoUser)));
    assert!(verify(&path).unwrap().is_empty());
}

#[test]
fn exports_name_every_record_for_an_inspector() {
    let (_dir, path) = trail_of(2);
    let r = verify(&path).unwrap();
    let csv = to_csv(&r);
    assert_eq!(csv.lines().count(), 3);
    // Quotes inside a field are doubled, as CSV readers expect.
    assert!(
        csv.contains("\"user2\"") && csv.contains(r#""comment"":""checked"#),
        "{csv}"
    );
    let html = to_html(&r, "Audit <trail>");
    assert!(
        html.contains("Audit &lt;trail&gt;")
            && html.contains("user1")
            && html.contains("2 records")
    );
}

#[test]
fn records_with_measured_values_verify_after_a_reopen() {
    // Predictions and measurements are floats of every kind; each must read back to the
    // bytes that were hashed (a rounding of the last digit would break the chain).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let t = AuditTrail::open(&path).unwrap();
    let mut x = 0.070_597_849_094_849_58_f64;
    for i in 0..200 {
        x = (x * 7.3 + 0.1).fract() * 10f64.powi(i % 9 - 3);
        t.append(Entry {
            details: serde_json::json!({ "value": x, "lower": x / 3.0, "upper": x * 1.1 }),
            ..entry(i as u32)
        })
        .unwrap();
    }
    drop(t);
    assert_eq!(verify(&path).unwrap().len(), 200);
}
