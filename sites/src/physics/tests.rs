//! Behaviour of the plant model as a whole.

use std::{collections::BTreeMap, time::Duration};

use chrono::{TimeZone, Utc};
use model::{Category, DataType, Site, Value};

use super::{unit_ops::Unit, *};

fn site(id: &str) -> Site {
    crate::builtin_site(id)
        .and_then(Result::ok)
        .unwrap_or_else(|| panic!("built-in site {id}"))
}

fn winter() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 15, 0, 0, 0).unwrap()
}

fn summer() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 7, 15, 4, 0, 0).unwrap()
}

const MINUTE: Duration = Duration::from_secs(60);

#[test]
fn same_seed_gives_the_same_values_and_another_seed_others() {
    let site = site("anhui");
    let mut a = Plant::new(&site, 42, winter());
    let mut b = Plant::new(&site, 42, winter());
    let mut c = Plant::new(&site, 43, winter());
    for _ in 0..300 {
        a.step(MINUTE);
        b.step(MINUTE);
        c.step(MINUTE);
        assert_eq!(a.sample(), b.sample());
    }
    assert_ne!(a.sample(), c.sample());
}

#[test]
fn every_signal_gets_a_value_of_its_data_type() {
    for id in crate::SITE_IDS {
        let site = site(id);
        let mut plant = Plant::new(&site, 1, summer());
        plant.step(MINUTE);
        let values = plant.sample().to_vec();
        assert_eq!(values.len(), site.signal_count());
        for ((_, e, s), v) in site.signals().zip(&values) {
            let ok = matches!(
                (s.data_type, v),
                (DataType::Double, Value::Float(x)) if x.is_finite()
            ) || matches!(
                (s.data_type, v),
                (DataType::Int, Value::Int(_))
                    | (DataType::Bool, Value::Bool(_))
                    | (DataType::String, Value::Text(_))
            );
            assert!(ok, "{id}/{}/{} = {v:?}", e.id, s.id);
        }
    }
}

#[test]
fn every_category_has_a_signal_changing_every_tick_on_every_line() {
    for id in crate::SITE_IDS {
        let site = site(id);
        let mut plant = Plant::new(&site, 9, winter());
        for _ in 0..5 {
            let before = plant.sample().to_vec();
            plant.step(Duration::from_secs(1));
            let after = plant.sample().to_vec();
            let mut changed: BTreeMap<(&str, Category), usize> = BTreeMap::new();
            for (((l, _, s), b), a) in site.signals().zip(&before).zip(&after) {
                if a != b {
                    *changed.entry((l.id.as_str(), s.category)).or_default() += 1;
                }
            }
            for line in &site.lines {
                for c in Category::ALL {
                    assert!(
                        changed.contains_key(&(line.id.as_str(), c)),
                        "{id}/{}: no {c} signal changed in a tick",
                        line.id
                    );
                }
            }
        }
    }
}

/// Runs a plant for `hours` in `step` increments, calling `see` after every step.
fn run(plant: &mut Plant, hours: f64, step: Duration, mut see: impl FnMut(&mut Plant)) {
    let steps = (hours * 3600.0 / step.as_secs_f64()).round() as usize;
    for _ in 0..steps {
        plant.step(step);
        see(plant);
    }
}

#[test]
fn batches_move_through_all_phases_in_order() {
    let site = site("shenzhen");
    let mut plant = Plant::new(&site, 7, winter());
    let mut seen: Vec<Vec<Phase>> = vec![Vec::new(); site.lines.len()];
    run(&mut plant, 72.0, Duration::from_secs(30), |p| {
        for (i, line) in site.lines.iter().enumerate() {
            let phase = p.phase(&line.id).unwrap_or(Phase::Idle);
            if seen[i].last() != Some(&phase) {
                seen[i].push(phase);
            }
        }
    });
    let mut complete = 0;
    for (line, phases) in site.lines.iter().zip(&seen) {
        for pair in phases.windows(2) {
            let (from, to) = (pair[0], pair[1]);
            let expected = match from {
                Phase::Idle => Phase::Dispensing,
                other => other.next().unwrap_or(Phase::Idle),
            };
            // A breakdown aborts a batch: back to IDLE from any phase.
            assert!(
                to == expected || to == Phase::Idle,
                "{}: {from} -> {to}",
                line.id
            );
        }
        complete += phases
            .windows(10)
            .filter(|w| w[0] == Phase::Idle && w[9] == Phase::Idle && w[1..9] == Phase::PROCESS[..])
            .count();
    }
    assert!(
        complete >= 2,
        "complete batches: {complete}; phases: {seen:?}"
    );
}

#[test]
fn lines_report_batch_and_shift_data() {
    let site = site("sichuan");
    let mut plant = Plant::new(&site, 5, summer());
    let index = |p: &Plant, s: &str| p.signal_index("line-1", "line-control", s).unwrap();
    let mut batch_ids = std::collections::BTreeSet::new();
    let mut shifts = std::collections::BTreeSet::new();
    run(&mut plant, 48.0, Duration::from_secs(60), |p| {
        let (b, s, phase, elapsed) = (
            index(p, "batch_id"),
            index(p, "shift_id"),
            index(p, "batch_phase"),
            index(p, "shift_elapsed_h"),
        );
        let v = p.sample();
        if let Value::Text(id) = &v[b] {
            if !id.is_empty() {
                assert!(id.starts_with("SI1-"), "{id}");
                batch_ids.insert(id.clone());
            }
            let is_idle = v[phase] == Value::Text("IDLE".into());
            assert_eq!(
                id.is_empty(),
                is_idle,
                "batch id {id:?} in phase {:?}",
                v[phase]
            );
        }
        if let Value::Text(shift) = &v[s] {
            shifts.insert(shift.clone());
        }
        let h = v[elapsed].as_f64().unwrap_or(-1.0);
        assert!((0.0..=8.0).contains(&h), "shift elapsed {h}");
    });
    assert!(batch_ids.len() >= 2, "{batch_ids:?}");
    assert_eq!(shifts.len(), 3, "{shifts:?}");
}

#[test]
fn counters_and_energy_never_decrease() {
    let site = site("anhui");
    let mut plant = Plant::new(&site, 3, winter());
    let watched: Vec<usize> = site
        .signals()
        .enumerate()
        .filter(|(_, (_, _, s))| {
            matches!(
                s.id.as_str(),
                "good_count"
                    | "reject_count"
                    | "energy_kwh"
                    | "batches_completed"
                    | "batches_aborted"
            )
        })
        .map(|(i, _)| i)
        .collect();
    assert!(watched.len() > 20);
    let mut last: Vec<f64> = watched.iter().map(|_| f64::MIN).collect();
    let mut grew = vec![false; watched.len()];
    run(&mut plant, 48.0, Duration::from_secs(60), |p| {
        let v = p.sample();
        for (k, &i) in watched.iter().enumerate() {
            let x = v[i].as_f64().unwrap_or(f64::NAN);
            assert!(x >= last[k], "signal {i} fell from {} to {x}", last[k]);
            if last[k] != f64::MIN && x > last[k] {
                grew[k] = true;
            }
            last[k] = x;
        }
    });
    assert!(grew.iter().filter(|g| **g).count() > watched.len() / 2);
}

#[test]
fn granule_lod_falls_while_drying() {
    let site = site("anhui");
    let mut plant = Plant::new(&site, 11, winter());
    let dryer = plant.lines[0]
        .machines
        .iter()
        .position(|m| matches!(m.unit, Unit::Drying(_)))
        .unwrap();
    let lod_signal = plant
        .signal_index("line-1", "dryer-01", "granule_lod")
        .unwrap();
    let mut drying_runs = 0;
    let mut previous: Option<f64> = None;
    let mut wettest = 0.0_f64;
    let mut last_reading = 0.0;
    run(&mut plant, 60.0, Duration::from_secs(30), |p| {
        let drying = p.phase("line-1") == Some(Phase::Drying)
            && p.lines[0].machines[dryer].core.state == PackMl::Execute;
        let Unit::Drying(d) = &p.lines[0].machines[dryer].unit else {
            unreachable!()
        };
        let lod = d.lod();
        let reading = p.sample()[lod_signal].as_f64().unwrap_or(f64::NAN);
        match (drying, previous) {
            (true, prev) => {
                if let Some(prev) = prev {
                    assert!(lod <= prev + 1e-12, "LOD rose from {prev} to {lod}");
                } else {
                    wettest = 0.0;
                }
                previous = Some(lod);
                wettest = wettest.max(reading);
                last_reading = reading;
            }
            (false, Some(_)) => {
                drying_runs += 1;
                assert!(wettest > 8.0, "wet granule at {wettest} %");
                assert!(last_reading < 3.0, "dried granule at {last_reading} %");
                previous = None;
            }
            (false, None) => {}
        }
    });
    assert!(drying_runs >= 2, "drying runs: {drying_runs}");
}

#[test]
fn cleanroom_environment_stays_plausible_in_winter_and_summer() {
    for id in crate::SITE_IDS {
        let site = site(id);
        let rooms: Vec<usize> = site
            .signals()
            .enumerate()
            .filter(|(_, (_, e, _))| e.kind.as_deref() == Some("cleanroom"))
            .map(|(i, _)| i)
            .collect();
        for start in [winter(), summer()] {
            let mut plant = Plant::new(&site, 21, start);
            run(&mut plant, 36.0, Duration::from_secs(120), |p| {
                let values = p.sample().to_vec();
                for &i in &rooms {
                    let (_, e, s) = site.signals().nth(i).unwrap();
                    let x = values[i].as_f64().unwrap_or(0.0);
                    let range = match s.id.as_str() {
                        "temperature" => 17.0..=26.0,
                        "humidity" => 25.0..=65.0,
                        "diff_pressure" => -40.0..=5.0,
                        "particles_0_5um" => 0.0..=3_520_000.0,
                        "particles_5um" => 0.0..=29_000.0,
                        "hvac_filter_dp" => 100.0..=400.0,
                        "operators_in_room" => 0.0..=10.0,
                        "hours_since_gowning" => 0.0..=9.0,
                        _ => continue,
                    };
                    assert!(range.contains(&x), "{id} {start}: {}/{} = {x}", e.id, s.id);
                }
            });
        }
    }
}

#[test]
fn shenzhen_monsoon_summer_shows_in_the_cleanrooms() {
    let site = site("shenzhen");
    let mean_humidity = |start| {
        let mut plant = Plant::new(&site, 2, start);
        let rooms: Vec<usize> = site
            .signals()
            .enumerate()
            .filter(|(_, (_, _, s))| s.id == "humidity")
            .map(|(i, _)| i)
            .collect();
        let mut sum = 0.0;
        let mut n = 0.0;
        run(&mut plant, 24.0, Duration::from_secs(300), |p| {
            let v = p.sample();
            for &i in &rooms {
                sum += v[i].as_f64().unwrap_or(0.0);
                n += 1.0;
            }
        });
        sum / n
    };
    // The cooling coil cannot take summer air all the way down to the set-point.
    let (summer, winter) = (mean_humidity(summer()), mean_humidity(winter()));
    assert!(
        summer > winter + 2.5,
        "summer {summer} %RH, winter {winter} %RH"
    );
}

#[test]
fn wear_accumulates_with_running_hours() {
    let site = site("shenzhen");
    let mut plant = Plant::new(&site, 13, winter());
    for line in &mut plant.lines {
        for m in &mut line.machines {
            m.core.wear.bearing = 0.1;
            m.core.wear.tooling = 0.1;
            m.core.wear.filter = 0.1;
        }
    }
    let filters_before: Vec<f64> = plant.lines[0]
        .rooms
        .iter()
        .map(|r| r.filter_load())
        .collect();
    run(&mut plant, 72.0, Duration::from_secs(60), |_| {});
    let press = plant.health("line-1", "press-01").unwrap();
    assert!(press.bearing > 0.1 && press.tooling > 0.1, "{press:?}");
    let dryer = plant.health("line-1", "dryer-01").unwrap();
    assert!(dryer.filter > 0.1, "{dryer:?}");
    let booth = plant.health("line-1", "dispensing-01").unwrap();
    assert!(booth.bearing > 0.1 && booth.filter > 0.1, "{booth:?}");
    for (room, before) in plant.lines[0].rooms.iter().zip(filters_before) {
        assert!(room.filter_load() > before || room.filter_load() < 0.05);
    }
    assert!(plant.health("line-1", "room-coating").is_none());
}

#[test]
fn worn_units_show_it_in_their_signals() {
    let site = site("anhui");
    let mut plant = Plant::new(&site, 17, winter());
    // Run until the press of line 1 compresses.
    let state = plant.signal_index("line-1", "press-01", "state").unwrap();
    let mut pressing = false;
    for _ in 0..(72 * 60) {
        plant.step(MINUTE);
        if plant.sample()[state] == Value::Text("EXECUTE".into())
            && plant.lines[0]
                .machines
                .iter()
                .any(|m| m.core.turning && matches!(m.unit, Unit::Compression(_)))
        {
            pressing = true;
            break;
        }
    }
    assert!(pressing, "the press never ran");
    let mean_of = |plant: &mut Plant, signal: &str, wear: (f64, f64)| {
        let i = plant.signal_index("line-1", "press-01", signal).unwrap();
        let press = plant.lines[0]
            .machines
            .iter()
            .position(|m| matches!(m.unit, Unit::Compression(_)))
            .unwrap();
        let mut sum = 0.0;
        for _ in 0..50 {
            plant.lines[0].machines[press].core.wear.bearing = wear.0;
            plant.lines[0].machines[press].core.wear.tooling = wear.1;
            plant.step(Duration::from_secs(1));
            sum += plant.sample()[i].as_f64().unwrap_or(0.0);
        }
        sum / 50.0
    };
    let healthy_vibration = mean_of(&mut plant, "vibration", (0.1, 0.1));
    let worn_vibration = mean_of(&mut plant, "vibration", (0.8, 0.1));
    assert!(
        worn_vibration > healthy_vibration + 2.0,
        "{healthy_vibration} -> {worn_vibration}"
    );
    let sharp = mean_of(&mut plant, "ejection_force", (0.1, 0.05));
    let worn = mean_of(&mut plant, "ejection_force", (0.1, 0.8));
    assert!(worn > sharp * 1.5, "{sharp} -> {worn}");
}

#[test]
fn written_set_points_are_adopted_and_others_refused() {
    let site = site("shenzhen");
    let mut plant = Plant::new(&site, 4, winter());
    let force = plant
        .signal_index("line-2", "press-01", "compression_force_sp")
        .unwrap();
    plant.write(force, &Value::Float(12.5)).unwrap();
    plant.step(Duration::from_secs(1));
    assert_eq!(plant.sample()[force], Value::Float(12.5));
    let room = plant
        .signal_index("line-1", "room-coating", "temperature_sp")
        .unwrap();
    plant.write(room, &Value::Int(23)).unwrap();
    assert_eq!(plant.sample()[room], Value::Float(23.0));

    let measured = plant
        .signal_index("line-2", "press-01", "main_compression_force")
        .unwrap();
    assert!(matches!(
        plant.write(measured, &Value::Float(1.0)),
        Err(WriteError::NotWritable { .. })
    ));
    assert!(matches!(
        plant.write(force, &Value::Float(1e6)),
        Err(WriteError::OutOfRange { .. })
    ));
    assert!(matches!(
        plant.write(force, &Value::Text("hard".into())),
        Err(WriteError::NotANumber { .. })
    ));
    assert_eq!(
        plant.write(usize::MAX, &Value::Float(1.0)),
        Err(WriteError::UnknownSignal(usize::MAX))
    );
}

#[test]
fn a_warmer_room_set_point_warms_the_room() {
    let site = site("sichuan");
    let mut plant = Plant::new(&site, 8, winter());
    let sp = plant
        .signal_index("line-2", "room-compression", "temperature_sp")
        .unwrap();
    let t = plant
        .signal_index("line-2", "room-compression", "temperature")
        .unwrap();
    plant.write(sp, &Value::Float(24.0)).unwrap();
    plant.step(Duration::from_secs(4 * 3600));
    let x = plant.sample()[t].as_f64().unwrap_or(0.0);
    assert!((x - 24.0).abs() < 0.8, "{x}");
}

#[test]
fn signals_the_model_does_not_know_get_values_in_their_range() {
    let text = r#"
templates = "equipment-types.toml"
[site]
id = "tianjin"
name = "Tianjin pilot plant"
namespace_uri = "urn:pharmatwin:site:tianjin"
endpoint = "opc.tcp://127.0.0.1:48440/"
[[lines]]
id = "pilot"
area = "osd"
[[lines.equipment]]
id = "press-01"
type = "tablet_press"
[[lines.equipment.signals]]
id = "lube_pump_pressure"
category = "machine"
unit = "bar"
limits = { low = 0.0, high = 10.0 }
spec = { low = 2.0, high = 4.0 }
[[lines.equipment]]
id = "weather-station"
[[lines.equipment.signals]]
id = "wind_speed"
category = "environment"
unit = "m/s"
limits = { low = 0.0, high = 40.0 }
[[lines.equipment.signals]]
id = "visitors"
category = "people"
unit = "count"
data_type = "int"
[[lines.equipment.signals]]
id = "alarm_horn_sp"
category = "method"
unit = "dB"
limits = { low = 60.0, high = 120.0 }
[[lines.equipment.signals]]
id = "comment"
category = "method"
unit = ""
data_type = "string"
"#;
    let site = model::load_site_text("sites/tianjin.toml", text, |_| {
        Ok((
            "sites/equipment-types.toml".into(),
            crate::EQUIPMENT_TYPES.into(),
        ))
    })
    .unwrap();
    let mut plant = Plant::new(&site, 1, winter());
    let lube = plant
        .signal_index("pilot", "press-01", "lube_pump_pressure")
        .unwrap();
    let wind = plant
        .signal_index("pilot", "weather-station", "wind_speed")
        .unwrap();
    let horn = plant
        .signal_index("pilot", "weather-station", "alarm_horn_sp")
        .unwrap();
    let visitors = plant
        .signal_index("pilot", "weather-station", "visitors")
        .unwrap();
    let first = plant.sample()[wind].clone();
    for _ in 0..100 {
        plant.step(MINUTE);
        let v = plant.sample();
        let l = v[lube].as_f64().unwrap();
        assert!((1.5..=4.5).contains(&l), "{l}");
        let w = v[wind].as_f64().unwrap();
        assert!((0.0..=40.0).contains(&w), "{w}");
        assert_eq!(v[horn], Value::Float(90.0));
        assert!(matches!(v[visitors], Value::Int(_)));
    }
    assert_ne!(plant.sample()[wind], first);
    plant.write(horn, &Value::Float(75.0)).unwrap();
    assert_eq!(plant.sample()[horn], Value::Float(75.0));
    // A line with only a press still makes batches: its other phases are passed over.
    let state = plant.signal_index("pilot", "press-01", "state").unwrap();
    let mut executed = false;
    for _ in 0..(48 * 60) {
        plant.step(MINUTE);
        executed |= plant.sample()[state] == Value::Text("EXECUTE".into());
    }
    assert!(executed);
}

#[test]
fn lab_results_are_released_hours_after_the_batch_and_then_shown() {
    let site = site("sichuan");
    let line = &site.lines[0].id;
    let mut plant = Plant::new(&site, 5, winter());
    let id_at = site.lines[0]
        .equipment
        .iter()
        .find(|e| e.kind.as_deref() == Some("line_control"))
        .and_then(|e| plant.signal_index(line, &e.id, "last_batch_id"))
        .expect("line control signal last_batch_id");
    let mut shown = Vec::new();
    for _ in 0..(4 * 24 * 6) {
        plant.step(Duration::from_secs(600));
        if let Value::Text(id) = &plant.sample()[id_at] {
            if shown.last() != Some(id) {
                shown.push(id.clone());
            }
        }
    }
    let results: Vec<_> = plant
        .lab_results()
        .into_iter()
        .filter(|r| &r.line == line)
        .collect();
    assert!(results.len() >= 3, "{} results in 4 days", results.len());
    for r in &results {
        let delay = (r.published_at - r.ended_at).num_minutes();
        assert!(
            (180..=360).contains(&delay),
            "{} after {delay} min",
            r.batch_id
        );
        assert!(shown.contains(&r.batch_id), "{} never shown", r.batch_id);
        assert!((r.measured.assay - r.expected.assay).abs() < 5.0 * ASSAY_NOISE);
    }
}
