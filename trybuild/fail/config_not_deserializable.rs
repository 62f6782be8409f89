use munggoggo::prelude::*;

struct SensorConfig {
    threshold: f64,
}

#[agent(config = SensorConfig, new = Sensor::new)]
struct Sensor {
    threshold: f64,
}

impl Sensor {
    fn new(config: SensorConfig) -> Self {
        Sensor { threshold: config.threshold }
    }
}

#[agent]
impl Sensor {}

fn main() {}
