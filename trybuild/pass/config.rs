//! `#[agent(config = T, new = path)]`: an agent built from a typed configuration.

use munggoggo::__private::AgentDefaults;
use munggoggo::prelude::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct SensorConfig {
    threshold: f64,
    #[serde(default)]
    label: String,
}

#[agent(identity = "sensor", config = SensorConfig, new = Sensor::new)]
struct Sensor {
    threshold: f64,
    label: String,
}

impl Sensor {
    fn new(config: SensorConfig) -> Self {
        Sensor {
            threshold: config.threshold,
            label: config.label,
        }
    }
}

#[agent]
impl Sensor {
    #[rpc]
    async fn threshold(&mut self) -> f64 {
        let _ = self.label.len();
        self.threshold
    }
}

fn main() {
    assert!(Sensor::construct().is_none(), "`threshold` has no default");
    let config = munggoggo::Config::new()
        .vars(Vec::<(String, String)>::new())
        .set("sensor", "threshold", 2.5);
    let sensor = Sensor::configured(&config, "sensor").ok().flatten();
    assert_eq!(sensor.map(|s| s.threshold), Some(2.5));
    assert_eq!(Sensor::config_type(), Some("SensorConfig"));
}
