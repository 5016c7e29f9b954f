//! Live carbon intensity from the Electricity Maps API, when
//! `ELECTRICITY_MAPS_TOKEN` is set: the latest value and the 24-hour
//! forecast per zone, each asked once per run (cached), with the embedded
//! tables as the fallback. A failure is a note, never an abort. The token
//! goes only to that API (header `auth-token`) and never into output.
//!
//! `ELECTRICITY_MAPS_URL` overrides the base URL (default
//! `https://api.electricitymap.org`), e.g. for a proxy.

use std::collections::HashMap;
use std::time::Duration;

use serde::Deserialize;

use super::carbon::{Intensity, Live};
use super::model::FleetRunner;

const DEFAULT_BASE: &str = "https://api.electricitymap.org";
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
struct Latest {
    zone: Option<String>,
    #[serde(rename = "carbonIntensity")]
    carbon_intensity: Option<f64>,
    datetime: Option<String>,
}

#[derive(Deserialize)]
struct ForecastPoint {
    #[serde(rename = "carbonIntensity")]
    carbon_intensity: Option<f64>,
    datetime: Option<String>,
}

#[derive(Deserialize)]
struct Forecast {
    #[serde(default)]
    forecast: Vec<ForecastPoint>,
}

pub use super::carbon::Cleanest;

/// One run's client: at most one `latest` and one `forecast` request per zone.
pub struct LiveCarbon {
    agent: ureq::Agent,
    base: String,
    token: String,
    latest: HashMap<String, Option<Intensity>>,
    forecast: HashMap<String, Option<Cleanest>>,
    /// Why a zone fell back to the tables (one line each, no token).
    pub notes: Vec<String>,
    pub requests: u32,
}

impl std::fmt::Debug for LiveCarbon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveCarbon")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// Electricity Maps zone ids are ISO alpha-2 codes or sub-zones (`DK-DK1`,
/// `US-CAL-CISO`); cloud regions are not zones.
fn is_zone(z: &str) -> bool {
    !z.contains(':')
        && z.len() >= 2
        && z.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && z.chars().take(2).all(|c| c.is_ascii_alphabetic())
}

impl LiveCarbon {
    /// From `ELECTRICITY_MAPS_TOKEN` (and `ELECTRICITY_MAPS_URL`); None when unset.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Option<LiveCarbon> {
        let token = lookup("ELECTRICITY_MAPS_TOKEN").filter(|t| !t.trim().is_empty())?;
        let base = lookup("ELECTRICITY_MAPS_URL")
            .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
            .unwrap_or_else(|| DEFAULT_BASE.to_string());
        Some(LiveCarbon {
            agent: crate::http::plain_agent(TIMEOUT),
            base: base.trim_end_matches('/').to_string(),
            token: token.trim().to_string(),
            latest: HashMap::new(),
            forecast: HashMap::new(),
            notes: Vec::new(),
            requests: 0,
        })
    }

    fn get(&mut self, what: &str, zone: &str) -> Result<String, String> {
        self.requests += 1;
        let url = format!("{}/v3/carbon-intensity/{what}", self.base);
        match self
            .agent
            .get(&url)
            .query("zone", zone)
            .header("auth-token", &self.token)
            .call()
        {
            Ok(mut r) if r.status().is_success() => r
                .body_mut()
                .with_config()
                .limit(1 << 20)
                .read_to_string()
                .map_err(|_| "the answer could not be read".to_string()),
            Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
            Err(ureq::Error::Timeout(_)) => Err("timed out".into()),
            Err(_) => Err("could not be reached".into()),
        }
    }

    /// The zone's latest intensity, or None (noted) to fall back to the tables.
    pub fn latest(&mut self, zone: &str) -> Option<Intensity> {
        let zone = zone.trim().to_ascii_uppercase();
        if !is_zone(&zone) {
            return None;
        }
        if let Some(v) = self.latest.get(&zone) {
            return v.clone();
        }
        let got = self.get("latest", &zone).and_then(|body| {
            let l: Latest =
                serde_json::from_str(&body).map_err(|_| "the answer was not the expected JSON")?;
            if l.zone
                .as_deref()
                .is_some_and(|z| !z.eq_ignore_ascii_case(&zone))
            {
                return Err("the answer was for another zone".to_string());
            }
            let g = l
                .carbon_intensity
                .filter(|g| g.is_finite() && *g >= 0.0 && *g < 5000.0)
                .ok_or("the answer had no carbon intensity")?;
            Ok(Intensity {
                g_per_kwh: g,
                zone: zone.clone(),
                source: format!(
                    "Electricity Maps, latest{}",
                    l.datetime.map(|d| format!(" ({d})")).unwrap_or_default()
                ),
                fallback: false,
            })
        });
        let v = match got {
            Ok(i) => Some(i),
            Err(why) => {
                self.notes.push(format!(
                    "Electricity Maps for zone {zone}: {why}; the embedded table's annual average is used"
                ));
                None
            }
        };
        self.latest.insert(zone, v.clone());
        v
    }

    /// The cleanest hour of the zone's 24-hour forecast.
    pub fn cleanest_hour(&mut self, zone: &str) -> Option<Cleanest> {
        let zone = zone.trim().to_ascii_uppercase();
        if !is_zone(&zone) {
            return None;
        }
        if let Some(v) = self.forecast.get(&zone) {
            return v.clone();
        }
        let v = self.get("forecast", &zone).ok().and_then(|body| {
            let f: Forecast = serde_json::from_str(&body).ok()?;
            f.forecast
                .into_iter()
                .take(24)
                .filter_map(|p| Some((p.carbon_intensity.filter(|g| g.is_finite())?, p.datetime?)))
                .min_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(g, at)| Cleanest {
                    zone: zone.clone(),
                    g_per_kwh: g,
                    at,
                })
        });
        self.forecast.insert(zone, v.clone());
        v
    }
}

/// Live values for the fleet's zones when `ELECTRICITY_MAPS_TOKEN` is set
/// (`lookup` reads the environment): the latest intensity and the forecast's
/// cleanest hour per zone, and why a zone fell back to the tables. The one
/// fetch `route` and `report` share; without a token, nothing is asked.
pub fn for_fleet(
    fleet: &[FleetRunner],
    lookup: impl Fn(&str) -> Option<String>,
) -> (Live, Vec<String>) {
    let mut out = Live::default();
    let Some(mut live) = LiveCarbon::from_env(lookup) else {
        return (out, Vec::new());
    };
    let mut zones: Vec<&str> = fleet
        .iter()
        .filter_map(|r| r.runneriq.zone.as_deref())
        .collect();
    zones.sort_unstable();
    zones.dedup();
    for z in zones {
        if let Some(i) = live.latest(z) {
            out.intensities.insert(z.to_string(), i);
            if let Some(c) = live.cleanest_hour(z) {
                out.forecast.insert(z.to_string(), c);
            }
        }
    }
    (out, live.notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_electricity_maps_zones_are_asked() {
        assert!(is_zone("DE") && is_zone("DK-DK1") && is_zone("US-CAL-CISO"));
        assert!(!is_zone("gcp:europe-west1") && !is_zone("X") && !is_zone("12"));
        assert!(LiveCarbon::from_env(|_| None).is_none());
        let l =
            LiveCarbon::from_env(|k| (k == "ELECTRICITY_MAPS_TOKEN").then(|| "secret-em".into()))
                .unwrap();
        assert!(!format!("{l:?}").contains("secret-em"));
    }
}
