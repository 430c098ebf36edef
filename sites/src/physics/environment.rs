//! Outdoor weather and the cleanrooms around the process: a well-mixed room with first-order
//! heat, moisture and particle balances, held by an air handling unit (AHU) whose cooling,
//! heating and dehumidifying capacity is finite — so a hot, humid afternoon in Shenzhen or a
//! cold night in Anhui shows up inside, a little.

use model::{Climate, Value};
use rand::rngs::SmallRng;

use super::{
    clock::Clock,
    shift::Occupancy,
    stochastic::{approach, gauss, uniform, Noise},
};

const ATMOSPHERE_PA: f64 = 101_325.0;
/// Volumetric heat capacity of air, kJ/(m³·K).
const AIR_HEAT_CAPACITY: f64 = 1.2 * 1.005;
/// Air density, kg/m³.
const AIR_DENSITY: f64 = 1.2;
/// Share of outdoor (fresh) air in the supply; the rest is recirculated.
const FRESH_AIR_SHARE: f64 = 0.2;
/// Volume a particle counter samples per reading (1 ft³), m³.
const COUNTER_SAMPLE_M3: f64 = 0.0283;

/// Water vapour saturation pressure over water (Magnus), Pa.
pub(crate) fn saturation_pressure(t: f64) -> f64 {
    610.94 * (17.625 * t / (t + 243.04)).exp()
}

/// Humidity ratio (kg water per kg dry air) of air at `t` °C and `rh` %.
pub(crate) fn humidity_ratio(t: f64, rh: f64) -> f64 {
    let pv = rh.clamp(0.0, 100.0) / 100.0 * saturation_pressure(t);
    0.622 * pv / (ATMOSPHERE_PA - pv)
}

/// Relative humidity (%) of air at `t` °C with humidity ratio `w`.
pub(crate) fn relative_humidity(t: f64, w: f64) -> f64 {
    let pv = w * ATMOSPHERE_PA / (0.622 + w);
    (100.0 * pv / saturation_pressure(t)).clamp(0.0, 100.0)
}

/// Dew point (°C) of air at `t` °C and `rh` %.
pub(crate) fn dew_point(t: f64, rh: f64) -> f64 {
    let g = (rh.max(1.0) / 100.0).ln() + 17.625 * t / (243.04 + t);
    243.04 * g / (17.625 - g)
}

/// Weather anomalies on top of the climate's seasonal and daily cycles: fronts and spells of
/// a few days (Ornstein–Uhlenbeck processes).
#[derive(Debug, Clone)]
pub(crate) struct Weather {
    temp_anomaly: f64,
    rh_anomaly: f64,
}

const WEATHER_TAU_S: f64 = 3.0 * 86_400.0;
const WEATHER_TEMP_SIGMA: f64 = 2.5;
const WEATHER_RH_SIGMA: f64 = 7.0;

impl Weather {
    pub(crate) fn new(rng: &mut SmallRng) -> Self {
        Weather {
            temp_anomaly: gauss(rng, WEATHER_TEMP_SIGMA),
            rh_anomaly: gauss(rng, WEATHER_RH_SIGMA),
        }
    }

    pub(crate) fn step(&mut self, dt: f64, rng: &mut SmallRng) {
        let keep = (-dt / WEATHER_TAU_S).exp();
        let spread = (1.0 - keep * keep).sqrt();
        self.temp_anomaly = self.temp_anomaly * keep + gauss(rng, WEATHER_TEMP_SIGMA) * spread;
        self.rh_anomaly = self.rh_anomaly * keep + gauss(rng, WEATHER_RH_SIGMA) * spread;
    }

    pub(crate) fn outdoor(&self, climate: &Climate, clock: &Clock) -> Outdoor {
        use std::f64::consts::TAU;
        // Coldest around 15 January, warmest in the afternoon (15:00 local).
        let season = -(TAU * (clock.day_of_year() - 15.0) / 365.25).cos();
        let day = (TAU * (clock.hour() - 15.0) / 24.0).cos();
        let temp = climate.mean_temp_c
            + climate.seasonal_amplitude_c * season
            + climate.daily_amplitude_c * day
            + self.temp_anomaly;
        // Monsoon summers are humid; relative humidity dips when the afternoon is warm.
        let rh = (climate.mean_rh_pct + climate.rh_amplitude_pct * season
            - 2.5 * climate.daily_amplitude_c * day
            + self.rh_anomaly)
            .clamp(12.0, 100.0);
        Outdoor {
            temp,
            w: humidity_ratio(temp, rh),
            dew_point: dew_point(temp, rh),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Outdoor {
    pub(crate) temp: f64,
    /// Humidity ratio, kg/kg.
    pub(crate) w: f64,
    pub(crate) dew_point: f64,
}

impl Outdoor {
    /// Dew point of the air the AHUs deliver to process equipment: the cooling coil takes
    /// it down to about 12 °C at most, whatever the weather.
    pub(crate) fn conditioned_dew_point(&self) -> f64 {
        self.dew_point.min(12.0)
    }
}

/// What the process puts into a room during a step.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RoomLoad {
    /// Heat released into the room air, kW.
    pub(crate) heat_kw: f64,
    /// Particles ≥ 0.5 µm emitted per second.
    pub(crate) dust_fine: f64,
    /// Particles ≥ 5 µm emitted per second.
    pub(crate) dust_coarse: f64,
    /// Water released into the room air, kg/h.
    pub(crate) moisture_kg_h: f64,
}

#[derive(Debug, Clone)]
pub(crate) struct Room {
    volume: f64,
    ach_design: f64,
    pub(crate) temp: f64,
    /// Humidity ratio of the room air, kg/kg.
    w: f64,
    dp: f64,
    dp_sp: f64,
    /// Particle concentrations ≥ 0.5 µm and ≥ 5 µm, per m³.
    p05: f64,
    p5: f64,
    supply_temp: f64,
    integral: f64,
    /// Loading of the terminal HEPA filters, 0 (clean) .. 1 (blocked).
    filter_load: f64,
    filter_rate_per_s: f64,
    filter_change_at: Option<f64>,
    pub(crate) temp_sp: f64,
    pub(crate) rh_sp: f64,
    pub(crate) occupancy: Occupancy,
    last_count: u32,
}

impl Room {
    /// A room sized after its purpose (read from its id) and ventilated after its grade.
    pub(crate) fn new(id: &str, grade: Option<&str>, dust_factor: f64, rng: &mut SmallRng) -> Self {
        let volume = if id.contains("dispens") {
            140.0
        } else if id.contains("granul") {
            480.0
        } else if id.contains("compress") {
            260.0
        } else if id.contains("coat") {
            320.0
        } else if id.contains("pack") {
            420.0
        } else {
            250.0
        };
        let ach_design = match grade.map(str::trim) {
            Some("A") | Some("B") => 40.0,
            Some("C") => 30.0,
            Some("D") => 20.0,
            _ => 15.0,
        };
        let temp_sp = 21.0;
        let rh_sp = 45.0;
        Room {
            volume,
            ach_design,
            temp: temp_sp + gauss(rng, 0.3),
            w: humidity_ratio(temp_sp, rh_sp),
            dp: -15.0,
            dp_sp: if id.contains("pack") { -10.0 } else { -15.0 },
            p05: 800.0,
            p5: 10.0,
            supply_temp: temp_sp,
            integral: 0.0,
            filter_load: uniform(rng, 0.05, 0.75),
            // Terminal filters last about half a year; humid, dusty air loads them faster.
            filter_rate_per_s: dust_factor * uniform(rng, 0.85, 1.15) / (170.0 * 86_400.0),
            filter_change_at: None,
            temp_sp,
            rh_sp,
            occupancy: Occupancy::default(),
            last_count: 0,
        }
    }

    fn ach(&self) -> f64 {
        self.ach_design * (1.0 - 0.12 * self.filter_load)
    }

    pub(crate) fn rh(&self) -> f64 {
        relative_humidity(self.temp, self.w)
    }

    #[cfg(test)]
    pub(crate) fn filter_load(&self) -> f64 {
        self.filter_load
    }

    pub(crate) fn step(
        &mut self,
        dt: f64,
        now: f64,
        outdoor: &Outdoor,
        load: &RoomLoad,
        rng: &mut SmallRng,
    ) {
        let people = f64::from(self.occupancy.count);
        let ach = self.ach();
        let flow = ach * self.volume / 3600.0; // m³/s

        // AHU: PI control of the supply air temperature, limited by coil capacity.
        let error = self.temp_sp - self.temp;
        self.integral = (self.integral + error * dt / 600.0).clamp(-8.0, 8.0);
        let coldest = 13.0 + 0.6 * (outdoor.temp - 32.0).max(0.0);
        let warmest = 32.0 - 0.5 * (-outdoor.temp).max(0.0);
        let command = (self.temp_sp + 2.0 * error + self.integral).clamp(coldest, warmest);
        self.supply_temp = approach(self.supply_temp, command, 120.0, dt);

        // Heat balance of room air and what is in it (furniture and walls store most).
        let capacity = self.volume * AIR_HEAT_CAPACITY * 8.0;
        let surroundings = 0.6 * 22.0 + 0.4 * outdoor.temp;
        let heat = AIR_HEAT_CAPACITY * flow * (self.supply_temp - self.temp)
            + 0.3 * (surroundings - self.temp)
            + load.heat_kw
            + 0.1 * people;
        self.temp += heat / capacity * dt;

        // Moisture: the cooling coil condenses the air down to its own dew point (which
        // rises when the outdoor air is very humid), a small steam humidifier adds in dry
        // winters.
        let target = humidity_ratio(self.temp_sp, self.rh_sp);
        let mixed = FRESH_AIR_SHARE * outdoor.w + (1.0 - FRESH_AIR_SHARE) * self.w;
        let coil_dew_point = 7.5 + 0.3 * (outdoor.dew_point - 18.0).max(0.0);
        let coil = humidity_ratio(coil_dew_point, 100.0);
        let supply_w = if mixed > target {
            mixed.min(coil.max(target - 0.0003))
        } else if mixed < target - 0.0005 {
            target.min(mixed + 0.0008)
        } else {
            mixed
        };
        let moisture = (0.07 * people + load.moisture_kg_h) / 3600.0;
        self.w += (flow / self.volume * (supply_w - self.w)
            + moisture / (AIR_DENSITY * self.volume))
            * dt;
        self.w = self.w.max(0.0005);

        // Pressure cascade: the exhaust damper holds the set-point; a loaded supply filter
        // leaves the room further below the corridor; a door opening collapses it briefly.
        if self.occupancy.count != self.last_count {
            self.dp *= 0.3;
            self.last_count = self.occupancy.count;
        }
        let dp_target = self.dp_sp * (1.0 + 0.25 * self.filter_load);
        self.dp = approach(self.dp, dp_target, 15.0, dt);

        // Particles: well-mixed room, HEPA supply, sources are people and the process.
        let removal = ach / 3600.0;
        let fine_source = people * 2.0e4 + load.dust_fine;
        let coarse_source = people * 350.0 + load.dust_coarse;
        let fine_target = 600.0 + fine_source / (self.volume * (removal + 1.0 / 3600.0));
        let coarse_target = 5.0 + coarse_source / (self.volume * (removal + 4.0 / 3600.0));
        self.p05 = approach(self.p05, fine_target, 1.0 / (removal + 1.0 / 3600.0), dt);
        self.p5 = approach(self.p5, coarse_target, 1.0 / (removal + 4.0 / 3600.0), dt);

        // Filter loading; a change is planned once it is due and done some days later.
        self.filter_load = (self.filter_load + self.filter_rate_per_s * dt).min(1.0);
        match self.filter_change_at {
            None if self.filter_load >= 0.85 => {
                self.filter_change_at = Some(now + uniform(rng, 2.0, 12.0) * 86_400.0);
            }
            Some(at) if now >= at => {
                self.filter_load = 0.02;
                self.filter_change_at = None;
            }
            _ => {}
        }
    }

    /// The room's reading of a cleanroom signal, if the model knows it.
    pub(crate) fn read(&self, id: &str, now: f64, n: &mut Noise) -> Option<Value> {
        let v = match id {
            "temperature" => Value::Float(n.add(self.temp, 0.04)),
            "humidity" => Value::Float(n.add(self.rh(), 0.25).clamp(0.0, 100.0)),
            "diff_pressure" => Value::Float(n.add(self.dp, 0.3)),
            "particles_0_5um" => Value::Int(n.count(self.p05, COUNTER_SAMPLE_M3) as i64),
            "particles_5um" => Value::Int(n.count(self.p5, COUNTER_SAMPLE_M3) as i64),
            "hvac_filter_dp" => {
                let dp = 140.0
                    * (1.0 + 1.4 * self.filter_load.powf(1.3))
                    * (self.ach() / self.ach_design).powi(2);
                Value::Float(n.add(dp, 0.8))
            }
            "air_changes" => Value::Float(n.add(self.ach(), 0.15)),
            "supply_air_temp" => Value::Float(n.add(self.supply_temp, 0.05)),
            "temperature_sp" => Value::Float(self.temp_sp),
            "humidity_sp" => Value::Float(self.rh_sp),
            "operators_in_room" => Value::Int(i64::from(self.occupancy.count)),
            "gowning_ok" => Value::Bool(self.occupancy.gowning_ok(now)),
            "hours_since_gowning" => Value::Float(self.occupancy.hours_since_gowning(now)),
            _ => return None,
        };
        Some(v)
    }

    /// Adopts a client's set-point; `false` if the room has no such set-point.
    pub(crate) fn set(&mut self, id: &str, value: f64) -> bool {
        match id {
            "temperature_sp" => self.temp_sp = value,
            "humidity_sp" => self.rh_sp = value,
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn psychrometrics_round_trip() {
        let w = humidity_ratio(21.0, 45.0);
        assert!((w - 0.0070).abs() < 0.0003, "{w}");
        assert!((relative_humidity(21.0, w) - 45.0).abs() < 1e-9);
        assert!((dew_point(21.0, 45.0) - 8.6).abs() < 0.3);
    }

    #[test]
    fn room_settles_at_its_set_point_and_particles_follow_people() {
        let mut rng = SmallRng::seed_from_u64(7);
        let mut room = Room::new("room-compression", Some("D"), 1.0, &mut rng);
        let outdoor = Outdoor {
            temp: 30.0,
            w: humidity_ratio(30.0, 80.0),
            dew_point: dew_point(30.0, 80.0),
        };
        let load = RoomLoad {
            heat_kw: 5.0,
            ..RoomLoad::default()
        };
        for i in 0..2_000 {
            room.step(5.0, i as f64 * 5.0, &outdoor, &load, &mut rng);
        }
        assert!((room.temp - 21.0).abs() < 0.5, "{}", room.temp);
        assert!((room.rh() - 45.0).abs() < 5.0, "{}", room.rh());
        let empty = room.p05;
        room.occupancy.count = 3;
        for i in 0..500 {
            room.step(5.0, i as f64 * 5.0, &outdoor, &load, &mut rng);
        }
        assert!(room.p05 > empty * 5.0, "{empty} -> {}", room.p05);
        assert!(room.p05 < 3_520_000.0);
    }
}
