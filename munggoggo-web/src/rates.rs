//! The dashboard's live figures: from the counters each agent reports in
//! every round, the rate of its runs and the p50 and p99 of their
//! durations over the last [`window`] (a sliding window of the rounds'
//! samples, as Prometheus' `rate(...[10s])` and `histogram_quantile` would
//! give them). An agent's own figures are those of its message handlers.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use super::model::AgentView;
use munggoggo::{duration_quantile as quantile, DURATION_BUCKETS as BUCKETS};

/// The shortest window the figures are taken over.
const MIN_WINDOW: Duration = Duration::from_secs(10);

/// The window for rounds every `refresh`: at least [`MIN_WINDOW`] and
/// three rounds.
pub(crate) fn window(refresh: Duration) -> Duration {
    MIN_WINDOW.max(refresh * 3)
}

/// What one behaviour had counted when a round looked.
#[derive(Debug, Clone)]
struct Count {
    runs: Option<u64>,
    durations: Option<Vec<u64>>,
}

/// One round's look at an agent.
#[derive(Debug)]
struct Sample {
    at: Instant,
    counts: HashMap<String, Count>,
}

/// The samples of every agent, oldest first.
#[derive(Debug)]
pub(crate) struct Rates {
    window: Duration,
    agents: HashMap<String, VecDeque<Sample>>,
}

impl Rates {
    pub(crate) fn new(window: Duration) -> Self {
        Rates {
            window,
            agents: HashMap::new(),
        }
    }

    /// Notes what `view` counts now (with the bucket counts of its
    /// behaviours' durations, by behaviour name, where the agent reported
    /// them) and fills in its figures over the window.
    pub(crate) fn fill(
        &mut self,
        view: &mut AgentView,
        mut durations: HashMap<String, Vec<u64>>,
        now: Instant,
    ) {
        let counts: HashMap<String, Count> = view
            .behaviours
            .iter()
            .map(|b| {
                let durations = durations.remove(&b.name).filter(|d| d.len() == BUCKETS);
                (
                    b.name.clone(),
                    Count {
                        runs: b.runs,
                        durations,
                    },
                )
            })
            .collect();
        let samples = self.agents.entry(view.name.clone()).or_default();
        // Counters that went down belong to an agent that started again:
        // its older samples say nothing about the new run.
        if samples
            .back()
            .is_some_and(|last| went_down(&last.counts, &counts))
        {
            samples.clear();
        }
        samples.push_back(Sample { at: now, counts });
        // Keep the newest sample at least a window old as the base.
        while samples.len() > 2 && now.duration_since(samples[1].at) >= self.window {
            samples.pop_front();
        }
        let (Some(base), Some(last)) = (samples.front(), samples.back()) else {
            return;
        };
        let seconds = last.at.duration_since(base.at).as_secs_f64();
        if samples.len() < 2 || seconds <= 0.0 {
            return;
        }
        let mut agent_rate: Option<f64> = None;
        let mut agent_buckets: Option<Vec<u64>> = None;
        for b in &mut view.behaviours {
            let (Some(then), Some(now)) = (base.counts.get(&b.name), last.counts.get(&b.name)) else {
                continue;
            };
            let rate = match (then.runs, now.runs) {
                (Some(then), Some(now)) => Some(now.saturating_sub(then) as f64 / seconds),
                _ => None,
            };
            let buckets = match (&then.durations, &now.durations) {
                (Some(then), Some(now)) => Some(
                    now.iter()
                        .zip(then)
                        .map(|(n, t)| n.saturating_sub(*t))
                        .collect::<Vec<u64>>(),
                ),
                _ => None,
            };
            b.rate = rate.map(round);
            if let Some(buckets) = &buckets {
                b.p50_ms = quantile(buckets, 0.5).map(|s| round(s * 1e3));
                b.p99_ms = quantile(buckets, 0.99).map(|s| round(s * 1e3));
            }
            if b.is_handler() {
                if let Some(rate) = rate {
                    *agent_rate.get_or_insert(0.0) += rate;
                }
                if let Some(buckets) = buckets {
                    let sum = agent_buckets.get_or_insert_with(|| vec![0; BUCKETS]);
                    for (s, n) in sum.iter_mut().zip(buckets) {
                        *s += n;
                    }
                }
            }
        }
        view.rate = agent_rate.map(round);
        if let Some(buckets) = agent_buckets {
            view.p50_ms = quantile(&buckets, 0.5).map(|s| round(s * 1e3));
            view.p99_ms = quantile(&buckets, 0.99).map(|s| round(s * 1e3));
        }
    }

    /// Forgets an agent that left.
    pub(crate) fn forget(&mut self, name: &str) {
        self.agents.remove(name);
    }
}

/// Whether a counter of `then` is larger in `now`'s place.
fn went_down(then: &HashMap<String, Count>, now: &HashMap<String, Count>) -> bool {
    now.iter().any(|(name, n)| {
        then.get(name).is_some_and(|t| {
            matches!((t.runs, n.runs), (Some(t), Some(n)) if n < t)
                || matches!((&t.durations, &n.durations), (Some(t), Some(n)) if n.iter().sum::<u64>() < t.iter().sum::<u64>())
        })
    })
}

/// Three significant decimals are plenty for a figure on a page (and keep
/// a view from changing in its last digits every round).
fn round(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let digits = 3 - x.abs().log10().floor() as i32 - 1;
    let scale = 10f64.powi(digits);
    (x * scale).round() / scale
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::BehaviourView;

    fn view(runs: u64, durations_at_25us: u64) -> (AgentView, HashMap<String, Vec<u64>>) {
        let mut view = AgentView::blank("a");
        view.behaviours
            .push(BehaviourView::blank("a.on_ping", "message", Some(runs)));
        view.behaviours
            .push(BehaviourView::blank("a.tick", "periodic", Some(1)));
        let mut counts = vec![0; BUCKETS];
        counts[1] = durations_at_25us;
        (view, HashMap::from([("a.on_ping".to_owned(), counts)]))
    }

    #[test]
    fn the_figures_are_over_the_window_and_the_agent_s_are_its_handlers() {
        let mut rates = Rates::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let (mut v, d) = view(100, 100);
        rates.fill(&mut v, d, t0);
        assert_eq!(v.rate, None, "one sample gives no rate");
        let (mut v, d) = view(300, 300);
        rates.fill(&mut v, d, t0 + Duration::from_secs(2));
        assert_eq!(v.behaviours[0].rate, Some(100.0));
        assert_eq!(v.behaviours[1].rate, Some(0.0));
        assert_eq!(v.rate, Some(100.0), "the periodic behaviour is not a handler");
        let p50 = v.p50_ms.unwrap();
        assert!(p50 > 0.01 && p50 <= 0.025, "{p50}");
        assert_eq!(v.behaviours[1].p50_ms, None, "no durations reported");
        // Twenty seconds on, with nothing new: the window moved past the runs.
        let (mut v, d) = view(300, 300);
        rates.fill(&mut v, d, t0 + Duration::from_secs(12));
        let (mut v, d) = view(300, 300);
        rates.fill(&mut v, d, t0 + Duration::from_secs(22));
        assert_eq!(v.rate, Some(0.0));
        assert_eq!(v.p50_ms, None, "nothing ran in the window");
    }

    #[test]
    fn an_agent_that_started_again_starts_its_figures_again() {
        let mut rates = Rates::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let (mut v, d) = view(500, 500);
        rates.fill(&mut v, d, t0);
        let (mut v, d) = view(10, 10);
        rates.fill(&mut v, d, t0 + Duration::from_secs(1));
        assert_eq!(v.rate, None);
        let (mut v, d) = view(20, 20);
        rates.fill(&mut v, d, t0 + Duration::from_secs(2));
        assert_eq!(v.rate, Some(10.0));
    }

    #[test]
    fn a_report_of_another_bucket_count_is_ignored() {
        let mut rates = Rates::new(Duration::from_secs(10));
        let t0 = Instant::now();
        for (i, runs) in [10, 20].into_iter().enumerate() {
            let (mut v, _) = view(runs, 0);
            let odd = HashMap::from([("a.on_ping".to_owned(), vec![runs; BUCKETS + 3])]);
            rates.fill(&mut v, odd, t0 + Duration::from_secs(i as u64));
            assert_eq!(v.p50_ms, None);
        }
    }

    #[test]
    fn figures_keep_three_significant_digits() {
        assert_eq!(round(123.456), 123.0);
        assert_eq!(round(0.012_345), 0.0123);
        assert_eq!(round(0.0), 0.0);
    }
}
