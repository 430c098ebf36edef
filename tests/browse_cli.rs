//! `pharmatwin browse` against our simulator and against the Python `asyncua` server: the
//! printed tree names nodes by namespace URI, keeps to `--depth`, starts at `--root`, gives
//! the same tree when every reference needs a continuation point, and the site file it
//! drafts loads and feeds the real connector. Unreachable servers and unknown roots are
//! named in the error.

mod common;

use std::{
    collections::BTreeSet,
    sync::Arc,
    time::{Duration, Instant},
};

use common::{
    connector::{python_peer, Connector},
    *,
};
use model::Site;

const SIM_NS: &str = "urn:pharmatwin:site:sichuan";
const PEER_NS: &str = "urn:test:python-peer";

fn browse(args: &[&str]) -> String {
    let mut all = vec!["browse"];
    all.extend_from_slice(args);
    tokio::task::block_in_place(|| run_ok(&all))
}

fn browse_failing(args: &[&str]) -> String {
    let mut all = vec!["browse"];
    all.extend_from_slice(args);
    tokio::task::block_in_place(|| run_failing(&all))
}

/// Indentation level of a tree line (two spaces a level).
fn level(line: &str) -> usize {
    (line.len() - line.trim_start().len()) / 2
}

/// The node ids of a printed tree, in order, with their levels (values left out: they move).
fn ids(tree: &str) -> Vec<(usize, String)> {
    tree.lines()
        .map(|l| {
            let id = l.split_whitespace().nth(2).unwrap_or_default().to_string();
            (level(l), id)
        })
        .collect()
}

fn line_with<'a>(tree: &'a str, id: &str) -> &'a str {
    tree.lines()
        .find(|l| l.split_whitespace().nth(2) == Some(id))
        .unwrap_or_else(|| panic!("no node {id} in the tree:\n{tree}"))
}

/// The (tag path, node, data type) of every signal, for comparing sites.
fn signature(site: &Site) -> BTreeSet<(String, String, String)> {
    site.signals()
        .map(|(_, _, s)| {
            (
                s.tag.path(),
                s.node.to_string(),
                format!("{:?}", s.data_type),
            )
        })
        .collect()
}

/// Waits until the connector has delivered a value of every signal in `wanted` (tag paths).
async fn values_of_all(conn: &mut Connector, wanted: &BTreeSet<String>, limit: Duration) {
    let start = Instant::now();
    let mut seen = BTreeSet::new();
    while !wanted.is_subset(&seen) {
        let left = limit.saturating_sub(start.elapsed());
        let Some(batch) = conn.next_samples(left).await else {
            let missing: Vec<_> = wanted.difference(&seen).collect();
            panic!("no values within {limit:?} of {missing:?}");
        };
        seen.extend(batch.iter().map(|s| s.tag.path()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_s_tree_by_namespace_uri_and_a_site_file_drafted_from_it() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let site = sites::builtin_site("sichuan").unwrap().unwrap();
    let sim = sites::simulator::start(
        Arc::new(site.clone()),
        sites::simulator::SimOptions {
            endpoint: Some("0".into()),
            pki_dir: Some(dir.path().join("sim-pki")),
            tick: Duration::from_millis(200),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let endpoint = sim.endpoint_url().to_string();

    // From the Objects folder, three levels: site, area, line folders; no equipment.
    let tree = browse(&["--endpoint", &endpoint]);
    let first = tree.lines().next().unwrap();
    assert_eq!(
        first, "Objects [Object] nsu=http://opcfoundation.org/UA/;i=85",
        "{tree}"
    );
    let (line, equipment, signal) = site.signals().next().unwrap();
    let line_folder = format!("nsu={SIM_NS};s=sichuan/{}/{}", line.area, line.id);
    assert!(line_with(&tree, &format!("nsu={SIM_NS};s=sichuan")).starts_with("  sichuan [Object]"));
    assert_eq!(level(line_with(&tree, &line_folder)), 3, "{tree}");
    assert!(
        tree.lines().all(|l| level(l) <= 3),
        "nothing below --depth 3:\n{tree}"
    );
    assert!(!tree.contains(&signal.node.to_string()), "{tree}");

    // From a line folder, two levels: its equipment and their variables, with values.
    let tree = browse(&[
        "--endpoint",
        &endpoint,
        "--root",
        &line_folder,
        "--depth",
        "2",
    ]);
    assert!(
        tree.lines()
            .next()
            .unwrap()
            .starts_with(&format!("{} [Object] {line_folder}", line.id)),
        "{tree}"
    );
    let eq_line = line_with(&tree, &format!("{line_folder}/{}", equipment.id));
    assert_eq!(level(eq_line), 1);
    let var_line = line_with(&tree, &signal.node.to_string());
    assert_eq!(level(var_line), 2);
    assert!(
        var_line.starts_with(&format!("    {} [Variable] ", signal.id)),
        "{var_line}"
    );
    let data_type = match signal.data_type {
        model::DataType::Double => "Double",
        model::DataType::Int => "Int64",
        model::DataType::Bool => "Boolean",
        model::DataType::String => "String",
    };
    assert!(
        var_line.contains(&format!("  {data_type} = ")),
        "data type and value: {var_line}"
    );
    assert_eq!(
        tree.lines().filter(|l| l.contains("[Variable]")).count(),
        line.equipment
            .iter()
            .map(|e| e.signals.len())
            .sum::<usize>(),
        "every variable of the line: {tree}"
    );

    // One reference per answer: everything else comes through BrowseNext, same tree.
    let paged = browse(&[
        "--endpoint",
        &endpoint,
        "--root",
        &line_folder,
        "--depth",
        "2",
        "--max-references",
        "1",
    ]);
    assert_eq!(ids(&paged), ids(&tree));

    // The draft site file: the same places, nodes and data types as the simulated site.
    let file = dir.path().join("drafted.toml");
    let file_arg = file.to_str().unwrap();
    browse(&[
        "--endpoint",
        &endpoint,
        "--depth",
        "5",
        "--write-site",
        file_arg,
    ]);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("# Site file drafted by `pharmatwin browse`"),
        "{text}"
    );
    assert!(text.contains("REVIEW"));
    let drafted = model::load_site_file(&file).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(drafted.id, "sichuan");
    assert_eq!(drafted.namespace_uri, SIM_NS);
    assert_eq!(drafted.endpoint, endpoint);
    assert_eq!(signature(&drafted), signature(&site));
    // It is not written over.
    let err = browse_failing(&["--endpoint", &endpoint, "--write-site", file_arg]);
    assert!(err.contains(file_arg), "{err}");

    // The connector reads the drafted site: values of the signals of a whole line.
    let wanted: BTreeSet<String> = drafted
        .signals()
        .filter(|(l, _, _)| l.id == line.id)
        .map(|(_, _, s)| s.tag.path())
        .collect();
    let mut conn = Connector::start(drafted, &dir.path().join("pki"));
    values_of_all(&mut conn, &wanted, Duration::from_secs(15)).await;
    conn.stop().await;
    sim.shutdown().await;
    eprintln!("simulator: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_peer_s_tree_a_drafted_site_and_named_errors() {
    let started = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = python_peer(port, &[]);
    let endpoint = format!("opc.tcp://127.0.0.1:{port}/freeopcua/server/");

    let tree = browse(&["--endpoint", &endpoint, "--depth", "2"]);
    let oven = format!("nsu={PEER_NS};s=Line1.Oven");
    assert!(
        line_with(&tree, &oven).starts_with("  Oven [Object]"),
        "{tree}"
    );
    for (name, id, data_type) in [
        ("Temperature", format!("{oven}.Temperature"), "Double"),
        ("Count", format!("{oven}.Count"), "Int64"),
        ("State", format!("{oven}.State"), "String"),
        ("DoorOpen", format!("{oven}.DoorOpen"), "Boolean"),
        ("Humidity", format!("nsu={PEER_NS};i=5001"), "Double"),
    ] {
        let line = line_with(&tree, &id);
        assert!(
            line.starts_with(&format!("    {name} [Variable] {id}  {data_type} = ")),
            "{line}"
        );
    }
    assert!(
        line_with(&tree, &format!("{oven}.State")).contains(" = \""),
        "text quoted"
    );
    assert!(tree.lines().all(|l| level(l) <= 2), "{tree}");

    let shallow = browse(&["--endpoint", &endpoint, "--depth", "1"]);
    assert!(
        shallow.contains(&oven) && !shallow.contains("Temperature"),
        "{shallow}"
    );
    assert!(
        line_with(&shallow, &oven).ends_with('…'),
        "unbrowsed: {shallow}"
    );

    let rooted = browse(&["--endpoint", &endpoint, "--root", &oven, "--depth", "1"]);
    assert!(
        rooted.starts_with(&format!("Oven [Object] {oven}\n")),
        "{rooted}"
    );
    assert_eq!(
        rooted.lines().count(),
        6,
        "the oven and its five variables: {rooted}"
    );

    // The draft: the oven as equipment, its variables as signals, placeholders above it.
    let file = dir.path().join("peer.toml");
    browse(&[
        "--endpoint",
        &endpoint,
        "--depth",
        "2",
        "--site",
        "peer",
        "--write-site",
        file.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&file).unwrap();
    let drafted = model::load_site_file(&file).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(drafted.namespace_uri, PEER_NS);
    let paths: BTreeSet<String> = drafted.signals().map(|(_, _, s)| s.tag.path()).collect();
    let expected: BTreeSet<String> = ["temperature", "count", "state", "door_open", "humidity"]
        .iter()
        .map(|s| format!("peer/unassigned-area/unassigned-line/oven/{s}"))
        .collect();
    assert_eq!(paths, expected, "{text}");
    let types: BTreeSet<String> = drafted
        .signals()
        .map(|(_, _, s)| format!("{}={:?}", s.id, s.data_type))
        .collect();
    for t in [
        "temperature=Double",
        "count=Int",
        "state=String",
        "door_open=Bool",
    ] {
        assert!(types.contains(t), "{types:?}");
    }
    let mut conn = Connector::start(drafted, &dir.path().join("pki"));
    values_of_all(&mut conn, &expected, Duration::from_secs(15)).await;
    conn.stop().await;

    // Errors name what to fix.
    let nowhere = format!("opc.tcp://127.0.0.1:{}/", free_port());
    let err = browse_failing(&["--endpoint", &nowhere]);
    assert!(err.contains(&nowhere), "{err}");
    let missing = format!("nsu={PEER_NS};s=Line1.NoSuchOven");
    let err = browse_failing(&["--endpoint", &endpoint, "--root", &missing]);
    assert!(
        err.contains(&missing) && err.contains("BadNodeIdUnknown"),
        "{err}"
    );
    let err = browse_failing(&["--endpoint", &endpoint, "--root", "nsu=urn:nobody;s=x"]);
    assert!(err.contains("urn:nobody") && err.contains(PEER_NS), "{err}");
    eprintln!("python peer: {:?}", started.elapsed());
}
