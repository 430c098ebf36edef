//! Trusting an OPC UA server from the command line: the refused certificate is listed with
//! its thumbprint, trusting it needs a reason, moves it to `trusted/` and is a trust
//! decision in the audit trail.

mod common;

use common::*;

#[test]
fn a_refused_server_certificate_is_listed_and_trusted_with_an_audited_reason() {
    let dir = tempfile::tempdir().unwrap();
    let pki = dir.path().join("pki");
    std::fs::create_dir_all(pki.join("rejected")).unwrap();
    let der = pki.join("rejected/server.der");
    self_signed(
        &der,
        &dir.path().join("key.pem"),
        "/CN=plant-server",
        &["-outform", "DER"],
    );
    let pki_arg = pki.to_str().unwrap();

    let listed = run_ok(&["pki", "list", "--pki", pki_arg]);
    let (thumbprint, file) = listed.trim().split_once('\t').expect(&listed);
    assert_eq!(thumbprint.len(), 40, "a SHA-1 thumbprint: {listed}");
    assert!(file.ends_with("server.der"));

    let err = run_failing(&[
        "pki", "trust", "--pki", pki_arg, "--reason", " ", thumbprint,
    ]);
    assert!(err.contains("--reason"), "{err}");
    let err = run_failing(&["pki", "trust", "--pki", pki_arg, "--reason", "x", "00ff"]);
    assert!(err.contains("no refused certificate"), "{err}");

    run_ok(&[
        "pki",
        "trust",
        "--pki",
        pki_arg,
        "--reason",
        "commissioning of line 3",
        thumbprint,
    ]);
    assert!(
        run_ok(&["pki", "list", "--pki", pki_arg]).trim().is_empty(),
        "no longer refused"
    );
    let trusted: Vec<_> = std::fs::read_dir(pki.join("trusted")).unwrap().collect();
    assert_eq!(trusted.len(), 1);

    let trail = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    let rec: serde_json::Value = serde_json::from_str(trail.lines().last().unwrap()).unwrap();
    let entry = if rec["entry"].is_object() {
        &rec["entry"]
    } else {
        &rec
    };
    assert_eq!(entry["action"], "certificate.trust", "{rec}");
    assert_eq!(entry["target"], format!("pki/{thumbprint}"));
    assert_eq!(entry["details"]["reason"], "commissioning of line 3");
    assert!(entry["user"].as_str().unwrap().starts_with("cli:"), "{rec}");
    run_ok(&[
        "audit",
        "verify",
        "--file",
        dir.path().join("audit.jsonl").to_str().unwrap(),
    ]);
}
