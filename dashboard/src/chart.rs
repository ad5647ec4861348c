//! The throughput chart of the overview: jobs finished per minute over the last hour, as stacked
//! bars (done below, dead above) that the template draws as inline SVG.

use serde::Serialize;

/// Minutes the chart covers, one bar each.
pub const MINUTES: usize = 60;
/// Drawing size in SVG user units.
const WIDTH: u32 = 240;
const HEIGHT: u32 = 48;
const BAR_WIDTH: u32 = 3;

/// Jobs finished in each minute of the last hour; index 0 is the current minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PerMinute {
    pub done: [i64; MINUTES],
    pub dead: [i64; MINUTES],
}

impl Default for PerMinute {
    fn default() -> Self {
        PerMinute {
            done: [0; MINUTES],
            dead: [0; MINUTES],
        }
    }
}

impl PerMinute {
    /// Adds `count` jobs that finished `minutes_ago` minutes ago; older ones are ignored.
    pub fn add(&mut self, minutes_ago: u32, dead: bool, count: i64) {
        let Some(slot) = usize::try_from(minutes_ago).ok().filter(|m| *m < MINUTES) else {
            return;
        };
        if dead {
            self.dead[slot] += count;
        } else {
            self.done[slot] += count;
        }
    }
}

/// The chart as the template draws it.
#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub width: u32,
    pub height: u32,
    pub bars: Vec<Bar>,
    pub done_total: i64,
    pub dead_total: i64,
    /// The largest number of jobs finished in one minute.
    pub peak: i64,
    /// A text alternative for screen readers.
    pub label: String,
}

/// One minute's bar; minutes without finished jobs have none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bar {
    pub x: u32,
    pub width: u32,
    pub done_y: u32,
    pub done_height: u32,
    pub dead_y: u32,
    pub dead_height: u32,
    /// The tooltip, such as `12 min ago: 30 done, 1 dead`.
    pub title: String,
}

/// Lays out the bars: the oldest minute on the left, heights scaled to the busiest minute, and
/// at least one unit high for any minute with a finished job.
pub fn throughput(per_minute: &PerMinute) -> Chart {
    let peak = (0..MINUTES)
        .map(|m| per_minute.done[m] + per_minute.dead[m])
        .max()
        .unwrap_or(0);
    let slot_width = WIDTH / MINUTES as u32;
    let scale = |count: i64| -> u32 {
        if count <= 0 || peak == 0 {
            return 0;
        }
        let height = (count as f64 / peak as f64 * f64::from(HEIGHT)).round() as u32;
        height.clamp(1, HEIGHT)
    };

    let mut bars = Vec::new();
    for minutes_ago in 0..MINUTES {
        let (done, dead) = (per_minute.done[minutes_ago], per_minute.dead[minutes_ago]);
        if done + dead == 0 {
            continue;
        }
        let done_height = scale(done);
        let dead_height = scale(dead).min(HEIGHT - done_height);
        bars.push(Bar {
            x: (MINUTES - 1 - minutes_ago) as u32 * slot_width,
            width: BAR_WIDTH,
            done_y: HEIGHT - done_height,
            done_height,
            dead_y: HEIGHT - done_height - dead_height,
            dead_height,
            title: format!("{minutes_ago} min ago: {done} done, {dead} dead"),
        });
    }

    let done_total = per_minute.done.iter().sum();
    let dead_total = per_minute.dead.iter().sum();
    Chart {
        width: WIDTH,
        height: HEIGHT,
        bars,
        done_total,
        dead_total,
        peak,
        label: format!(
            "Last 60 minutes: {done_total} done, {dead_total} dead, at most {peak} in one minute"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_hour_has_no_bars() {
        let chart = throughput(&PerMinute::default());
        assert!(chart.bars.is_empty());
        assert_eq!(chart.peak, 0);
    }

    #[test]
    fn bars_are_scaled_and_stacked() {
        let mut per_minute = PerMinute::default();
        per_minute.add(0, false, 30);
        per_minute.add(0, true, 10);
        per_minute.add(59, false, 1);
        per_minute.add(60, false, 500);
        let chart = throughput(&per_minute);

        assert_eq!(chart.peak, 40);
        assert_eq!(chart.done_total, 31);
        assert_eq!(chart.dead_total, 10);
        assert_eq!(chart.bars.len(), 2);

        let newest = &chart.bars[0];
        assert_eq!(newest.x, 236, "the current minute is on the right");
        assert_eq!(newest.done_height, 36);
        assert_eq!(newest.dead_height, 12);
        assert_eq!(newest.done_y, 12);
        assert_eq!(newest.dead_y, 0);
        assert_eq!(newest.title, "0 min ago: 30 done, 10 dead");

        let oldest = &chart.bars[1];
        assert_eq!(oldest.x, 0);
        assert_eq!(oldest.done_height, 1, "a small minute stays visible");
        assert_eq!(oldest.dead_height, 0);
    }
}
