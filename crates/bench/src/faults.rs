//! `--connect-faults` / `--x-faults`: the sandbox's fault profiles, applied to every operation of
//! one platform for the whole scenario, so that load can be measured while a platform misbehaves.
//!
//! A spec is a comma-separated list of `key=value`:
//!
//! | key | value | meaning |
//! |---|---|---|
//! | `error` | 0.0–1.0 | share of calls answered with the platform's transient error (Connect 503, X 503) |
//! | `throttle` | 0.0–1.0 | share answered with the platform's throttling error (429, X with a reset 1 s later) |
//! | `drop` | 0.0–1.0 | share whose connection is closed before the call takes effect |
//! | `drop-after` | 0.0–1.0 | share whose connection is closed after the call took effect |
//! | `latency` | `MS` or `MS+JITTER` | delay of every call, fixed plus uniform jitter, in ms |
//! | `seed` | integer | the profile's PRNG seed (runs with the same calls draw the same faults) |
//!
//! e.g. `--connect-faults error=0.15,throttle=0.05,latency=5+10`.

use xdm_sandbox::{DropMode, FaultProfile};

/// Parses a fault spec (see the module documentation).
pub fn parse_fault_spec(spec: &str) -> Result<FaultProfile, String> {
    let mut profile = FaultProfile::default();
    let mut drops: Option<(f64, DropMode)> = None;
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}`: expected key=value"))?;
        let (key, value) = (key.trim(), value.trim());
        let rate = || -> Result<f64, String> {
            let r: f64 = value
                .parse()
                .map_err(|_| format!("{key}: `{value}` is not a number"))?;
            if (0.0..=1.0).contains(&r) {
                Ok(r)
            } else {
                Err(format!("{key}: {r} is not within 0.0..=1.0"))
            }
        };
        match key {
            "error" => profile.error_rate = rate()?,
            "throttle" => profile.throttle_rate = rate()?,
            "drop" | "drop-after" => {
                let mode = if key == "drop" {
                    DropMode::Before
                } else {
                    DropMode::After
                };
                if drops.is_some() {
                    return Err("only one of drop / drop-after".to_owned());
                }
                drops = Some((rate()?, mode));
            }
            "latency" => {
                let (fixed, jitter) = value.split_once('+').unwrap_or((value, "0"));
                let ms = |s: &str| -> Result<u64, String> {
                    s.trim()
                        .parse()
                        .map_err(|_| format!("latency: `{value}` is not MS or MS+JITTER"))
                };
                profile.latency_ms = ms(fixed)?;
                profile.jitter_ms = ms(jitter)?;
            }
            "seed" => {
                profile.seed = Some(
                    value
                        .parse()
                        .map_err(|_| format!("seed: `{value}` is not an integer"))?,
                );
            }
            other => {
                return Err(format!(
                    "unknown key `{other}` (error, throttle, drop, drop-after, latency, seed)"
                ));
            }
        }
    }
    if let Some((rate, mode)) = drops {
        profile = profile.with_drops(rate, mode);
    }
    let total = profile.error_rate + profile.throttle_rate + profile.drop_rate;
    if total > 1.0 {
        return Err(format!("the rates add up to {total}, more than 1"));
    }
    if profile.is_noop() {
        return Err("the spec changes nothing".to_owned());
    }
    Ok(profile)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_into_profiles() {
        let p = parse_fault_spec("error=0.15, throttle=0.05,latency=5+10,seed=7").unwrap();
        assert_eq!(p.error_rate, 0.15);
        assert_eq!(p.throttle_rate, 0.05);
        assert_eq!((p.latency_ms, p.jitter_ms), (5, 10));
        assert_eq!(p.seed, Some(7));
        assert_eq!(p.drop_rate, 0.0);

        let p = parse_fault_spec("drop-after=0.02").unwrap();
        assert_eq!((p.drop_rate, p.drop_mode), (0.02, DropMode::After));
        let p = parse_fault_spec("drop=0.5,latency=3").unwrap();
        assert_eq!((p.drop_rate, p.drop_mode), (0.5, DropMode::Before));
        assert_eq!((p.latency_ms, p.jitter_ms), (3, 0));
    }

    #[test]
    fn bad_specs_are_refused_with_a_reason() {
        for (spec, why) in [
            ("error", "key=value"),
            ("error=2", "within"),
            ("error=x", "not a number"),
            ("error=0.6,throttle=0.6", "add up"),
            ("drop=0.1,drop-after=0.1", "only one"),
            ("latency=fast", "MS or MS+JITTER"),
            ("colour=red", "unknown key"),
            ("", "changes nothing"),
            ("error=0", "changes nothing"),
        ] {
            let e = parse_fault_spec(spec).unwrap_err();
            assert!(e.contains(why), "{spec}: {e}");
        }
    }
}
