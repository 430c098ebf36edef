//! The built-in plant files against the conventions the rest of PharmaTwin relies on.

use std::collections::BTreeSet;

use model::{Category, DataType, Equipment, Site};

use super::*;

const PROCESS_TYPES: [&str; 8] = [
    "dispensing_booth",
    "high_shear_granulator",
    "fluid_bed_dryer",
    "mill",
    "bin_blender",
    "tablet_press",
    "film_coater",
    "blister_packer",
];

fn sites() -> Vec<Site> {
    builtin_sites().unwrap_or_else(|e| panic!("built-in site files must load: {e}"))
}

fn signal<'a>(e: &'a Equipment, id: &str) -> &'a model::Signal {
    e.signals
        .iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("{} has no signal `{id}`", e.id))
}

fn assert_signal(e: &Equipment, id: &str, category: Category, data_type: DataType) {
    let s = signal(e, id);
    assert_eq!(s.category, category, "{}/{id} category", e.id);
    assert_eq!(s.data_type, data_type, "{}/{id} data type", e.id);
}

#[test]
fn three_sites_load_with_their_endpoints_and_namespaces() {
    let sites = sites();
    let ids: Vec<&str> = sites.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, SITE_IDS);
    for (site, port) in sites.iter().zip([48410, 48420, 48430]) {
        assert_eq!(site.enterprise, "pharma-group");
        assert_eq!(
            site.namespace_uri,
            format!("urn:pharmatwin:site:{}", site.id)
        );
        assert_eq!(site.endpoint, format!("opc.tcp://127.0.0.1:{port}/"));
        assert_eq!(site.origin, format!("sites/{}.toml", site.id));
        assert!(site.areas.iter().any(|a| a.id == "osd"));
    }
    let lines: Vec<usize> = sites.iter().map(|s| s.lines.len()).collect();
    assert_eq!(lines, [3, 2, 2]);
    assert!(builtin_site("anhui").is_some_and(|s| s.is_ok()));
    assert!(builtin_site("tianjin").is_none());
}

#[test]
fn every_site_serves_at_least_300_signals_with_all_categories_on_every_line() {
    for site in sites() {
        assert!(
            site.signal_count() >= 300,
            "{} has {} signals",
            site.id,
            site.signal_count()
        );
        for line in &site.lines {
            let categories: BTreeSet<Category> = line
                .equipment
                .iter()
                .flat_map(|e| e.signals.iter().map(|s| s.category))
                .collect();
            assert_eq!(
                categories.len(),
                5,
                "{}/{}: {categories:?}",
                site.id,
                line.id
            );
            let count: usize = line.equipment.iter().map(|e| e.signals.len()).sum();
            assert!(count >= 150, "{}/{} has {count} signals", site.id, line.id);
        }
    }
}

#[test]
fn sites_differ_in_climate_costs_and_equipment_age() {
    let sites = sites();
    let (shenzhen, anhui, sichuan) = (&sites[0], &sites[1], &sites[2]);
    assert!(shenzhen.climate.mean_temp_c > anhui.climate.mean_temp_c);
    assert!(anhui.climate.seasonal_amplitude_c > shenzhen.climate.seasonal_amplitude_c);
    assert!(sichuan.climate.daily_amplitude_c <= anhui.climate.daily_amplitude_c);
    assert!(shenzhen.costs.energy_per_kwh > sichuan.costs.energy_per_kwh);
    assert!(shenzhen.costs.labour_per_hour > anhui.costs.labour_per_hour);
    let oldest = |s: &Site| {
        s.lines
            .iter()
            .flat_map(|l| &l.equipment)
            .filter_map(|e| e.installed.clone())
            .min()
            .unwrap_or_default()
    };
    assert!(oldest(anhui) < oldest(sichuan) && oldest(sichuan) < oldest(shenzhen));
}

#[test]
fn every_line_has_the_process_train_line_control_and_cleanrooms() {
    for site in sites() {
        for line in &site.lines {
            let where_ = format!("{}/{}", site.id, line.id);
            for t in PROCESS_TYPES {
                let e = line
                    .equipment
                    .iter()
                    .find(|e| e.kind.as_deref() == Some(t))
                    .unwrap_or_else(|| panic!("{where_} has no {t}"));
                let room = e
                    .room
                    .as_deref()
                    .unwrap_or_else(|| panic!("{where_}/{} has no room", e.id));
                let room = line.equipment.iter().find(|r| r.id == room);
                assert_eq!(
                    room.and_then(|r| r.kind.as_deref()),
                    Some("cleanroom"),
                    "{where_}/{}",
                    e.id
                );
                assert!(e.maker.is_some() && e.serial.is_some() && e.installed.is_some());
            }
            let rooms: Vec<&Equipment> = line
                .equipment
                .iter()
                .filter(|e| e.kind.as_deref() == Some("cleanroom"))
                .collect();
            assert!(rooms.len() >= 4, "{where_}");
            assert!(rooms
                .iter()
                .all(|r| matches!(r.grade.as_deref(), Some("C") | Some("D"))));
            let control = line
                .equipment
                .iter()
                .filter(|e| e.kind.as_deref() == Some("line_control"))
                .count();
            assert_eq!(control, 1, "{where_}");
        }
    }
}

#[test]
fn fixed_signal_conventions_hold() {
    use Category::*;
    for site in sites() {
        for e in site.lines.iter().flat_map(|l| &l.equipment) {
            match e.kind.as_deref() {
                Some(t) if PROCESS_TYPES.contains(&t) => {
                    assert_signal(e, "state", Machine, DataType::String);
                    assert_signal(e, "energy_kwh", Machine, DataType::Double);
                    if matches!(
                        t,
                        "tablet_press" | "blister_packer" | "film_coater" | "dispensing_booth"
                    ) {
                        assert_signal(e, "good_count", Machine, DataType::Int);
                        assert_signal(e, "reject_count", Machine, DataType::Int);
                    }
                }
                Some("cleanroom") => {
                    for id in ["temperature", "humidity", "diff_pressure", "hvac_filter_dp"] {
                        assert_signal(e, id, Environment, DataType::Double);
                    }
                    assert_signal(e, "particles_0_5um", Environment, DataType::Int);
                    assert_signal(e, "particles_5um", Environment, DataType::Int);
                    assert_signal(e, "operators_in_room", People, DataType::Int);
                    assert_signal(e, "gowning_ok", People, DataType::Bool);
                    assert_signal(e, "hours_since_gowning", People, DataType::Double);
                    assert_eq!(signal(e, "temperature").unit, "degC");
                    assert_eq!(signal(e, "humidity").unit, "%RH");
                    assert_eq!(signal(e, "diff_pressure").unit, "Pa");
                    assert_eq!(signal(e, "particles_0_5um").unit, "count/m3");
                }
                Some("line_control") => {
                    for id in [
                        "batch_id",
                        "product",
                        "recipe",
                        "recipe_version",
                        "sop_version",
                        "batch_phase",
                    ] {
                        assert_signal(e, id, Method, DataType::String);
                    }
                    assert_signal(e, "phase_elapsed_min", Method, DataType::Double);
                    assert_signal(e, "batch_progress_pct", Method, DataType::Double);
                    assert_signal(e, "shift_id", People, DataType::String);
                    assert_signal(e, "shift_lead", People, DataType::String);
                    assert_signal(e, "operators_on_shift", People, DataType::Int);
                    assert_signal(e, "operators_qualified", People, DataType::Int);
                    assert_signal(e, "shift_elapsed_h", People, DataType::Double);
                }
                other => panic!("unexpected equipment type {other:?} at {}", e.id),
            }
            for s in &e.signals {
                assert_eq!(
                    s.node.to_string(),
                    format!(
                        "nsu={};s={}.{}.{}",
                        site.namespace_uri, s.tag.line, e.id, s.id
                    )
                );
                if s.id.ends_with("_sp") {
                    assert_eq!(s.category, Method, "{}/{} is a set-point", e.id, s.id);
                }
                if let (Some(l), Some(sp)) = (s.limits, s.spec) {
                    assert!(
                        l.low <= sp.low && sp.high <= l.high,
                        "{}/{}: spec outside limits",
                        e.id,
                        s.id
                    );
                }
            }
        }
    }
}

#[test]
fn the_catalogue_refers_to_no_node_ids() {
    assert!(
        !EQUIPMENT_TYPES.contains("node ="),
        "node ids are derived, not written"
    );
}
