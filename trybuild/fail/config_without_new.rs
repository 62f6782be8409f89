use munggoggo::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct SensorConfig {
    threshold: f64,
}

#[agent(config = SensorConfig)]
struct Sensor {
    threshold: f64,
}

#[agent]
impl Sensor {}

fn main() {}
