//! Usage profiles: how much CPU or memory a pod (or a node's system overhead)
//! uses as simulated time passes.
//!
//! Scenarios describe load as short strings so that a whole cluster's behaviour
//! over time fits on a screen:
//!
//! ```text
//! PROFILE  := SHAPE [ " ~" PERCENT "%" ]
//! SHAPE    := QUANTITY
//!           | "ramp(" FROM "," TO "," START "," END ")"      linear between START and END, constant outside
//!           | "step(" FROM "," TO "," AT ")"                 FROM before AT, TO from AT on
//!           | "sine(" MEAN "," AMPLITUDE "," PERIOD [ "," PHASE ] ")"
//!           | "pulse(" BASE "," PEAK "," EVERY "," DURATION ")"  PEAK for DURATION at the start of every EVERY
//! QUANTITY := Kubernetes quantity: 250m, 1.5, 2, 512Mi, 1Gi, 100M, 64K
//! TIME     := 90 | 30s | 5m | 1h | 1d | 500ms | 1h30m   (seconds since the scenario started)
//! ```
//!
//! The optional noise `~N%` perturbs the value by up to ±N%, deterministically
//! for a given seed, key (e.g. the pod's name) and 15-second bucket of time, so a
//! replayed scenario produces exactly the same metrics.
//!
//! Values are returned in milli-units (millicores, milli-bytes), the resolution
//! Kubernetes quantities are exact in, so CPU and memory share one code path.

use std::fmt;
use std::str::FromStr;

/// Noise is constant within buckets of this many seconds (the metrics-server's
/// default resolution), so repeated reads within a scrape agree.
pub const NOISE_BUCKET_SECS: f64 = 15.0;

/// The accepted forms, quoted by every parse error so a typo is easy to fix.
pub const PROFILE_FORMS: &str = "accepted forms: a quantity (250m, 1.5, 512Mi), ramp(FROM, TO, START, END), \
     step(FROM, TO, AT), sine(MEAN, AMPLITUDE, PERIOD[, PHASE]), pulse(BASE, PEAK, EVERY, DURATION), \
     each optionally followed by ' ~N%' (noise); times as 90, 30s, 5m, 1h";

const QUANTITY_FORMS: &str = "expected a non-negative number with an optional suffix (m, k, M, G, T, Ki, Mi, Gi, \
     Ti, ...), e.g. 250m, 1.5, 512Mi";

const TIME_FORMS: &str = "expected a non-negative time such as 90, 30s, 5m, 1h, 1d or 1h30m";

/// A resource quantity as written plus its exact value in milli-units.
#[derive(Debug, Clone, PartialEq)]
struct Qty {
    milli: i128,
    text: String,
}

/// A point or span of simulated time as written plus its value in seconds.
#[derive(Debug, Clone, PartialEq)]
struct Secs {
    secs: f64,
    text: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Constant(Qty),
    Ramp { from: Qty, to: Qty, start: Secs, end: Secs },
    Step { from: Qty, to: Qty, at: Secs },
    Sine { mean: Qty, amplitude: Qty, period: Secs, phase: Option<Secs> },
    Pulse { base: Qty, peak: Qty, every: Secs, duration: Secs },
}

/// A resource quantity as a function of simulated time (see the module docs
/// for the grammar). Keeps the spelling of its parts so that `Display` gives
/// back what the scenario author wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Boxed: keeps `Profile` (and the actions carrying it) small.
    shape: Box<Shape>,
    /// Noise amplitude in percent (0–100), if any.
    noise: Option<f64>,
}

impl Profile {
    /// A constant profile of `milli` milli-units, for callers that build
    /// profiles in code (written as a plain quantity, e.g. `250m`).
    pub fn constant_milli(milli: i128) -> Profile {
        let milli = milli.max(0);
        let text = if milli % 1000 == 0 { format!("{}", milli / 1000) } else { format!("{milli}m") };
        Profile { shape: Box::new(Shape::Constant(Qty { milli, text })), noise: None }
    }

    /// True when the value never changes over time (a plain quantity without noise).
    pub fn is_constant(&self) -> bool {
        matches!(*self.shape, Shape::Constant(_)) && self.noise.unwrap_or(0.0) == 0.0
    }

    /// Value at simulated time `t_secs`, in milli-units (millicores for cpu,
    /// milli-bytes for memory: callers divide), deterministic for a given
    /// (seed, key, t bucket of 15 s) — same inputs, same noise. Never negative.
    pub fn value_milli(&self, t_secs: f64, seed: u64, key: &str) -> i128 {
        let t = if t_secs.is_finite() { t_secs } else { 0.0 };
        let base = self.shape.value(t).max(0.0);
        let value = match self.noise {
            Some(pct) if pct > 0.0 => {
                let bucket = (t / NOISE_BUCKET_SECS).floor() as i64;
                base * (1.0 + noise_unit(seed, key, bucket) * pct / 100.0)
            }
            _ => base,
        };
        // `as` saturates, so absurd values cannot wrap.
        (value.round() as i128).max(0)
    }
}

impl Shape {
    fn value(&self, t: f64) -> f64 {
        match self {
            Shape::Constant(q) => q.milli as f64,
            Shape::Ramp { from, to, start, end } => {
                let (a, b) = (from.milli as f64, to.milli as f64);
                if t <= start.secs {
                    a
                } else if t >= end.secs {
                    b
                } else {
                    a + (b - a) * (t - start.secs) / (end.secs - start.secs)
                }
            }
            Shape::Step { from, to, at } => {
                if t < at.secs {
                    from.milli as f64
                } else {
                    to.milli as f64
                }
            }
            Shape::Sine { mean, amplitude, period, phase } => {
                let shift = phase.as_ref().map_or(0.0, |p| p.secs);
                let angle = std::f64::consts::TAU * (t + shift) / period.secs;
                mean.milli as f64 + amplitude.milli as f64 * angle.sin()
            }
            Shape::Pulse { base, peak, every, duration } => {
                if t >= 0.0 && t.rem_euclid(every.secs) < duration.secs {
                    peak.milli as f64
                } else {
                    base.milli as f64
                }
            }
        }
    }
}

/// A stable hash (FNV-1a then splitmix64) so noise does not depend on the
/// Rust version or the platform, unlike `DefaultHasher`. Returns [-1, 1].
fn noise_unit(seed: u64, key: &str, bucket: i64) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mixed = splitmix64(splitmix64(h ^ seed) ^ (bucket as u64));
    let unit = (mixed >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
    unit * 2.0 - 1.0
}

/// One step of the splitmix64 generator: a cheap, well-mixed bijection.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Parses a Kubernetes quantity (`250m`, `1.5`, `512Mi`, `1e3`; `K` is taken
/// as `k`) into milli-units, rounding anything finer than a milli-unit up as
/// the API server does. Negative quantities are refused: usage and capacity
/// cannot be negative.
pub fn parse_quantity_milli(s: &str) -> Result<i128, String> {
    quantity_milli(s).map_err(|why| format!("invalid quantity {s:?}: {why}; {QUANTITY_FORMS}"))
}

/// [`parse_quantity_milli`] with just the reason as error.
fn quantity_milli(s: &str) -> Result<i128, String> {
    let bad = |why: &str| why.to_string();
    let body = s.strip_prefix('+').unwrap_or(s);
    if body.starts_with('-') {
        return Err(bad("must not be negative"));
    }
    let num_len = body.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
    let (num, suffix) = body.split_at(num_len);
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty() {
        return Err(bad("not a number"));
    }
    if frac.contains('.') {
        return Err(bad("more than one decimal point"));
    }
    let digits = format!("{int}{frac}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > 36 {
        return Err(bad("too large"));
    }
    let mantissa: i128 = if digits.is_empty() { 0 } else { digits.parse().map_err(|_| bad("not a number"))? };
    let frac_len = i64::try_from(frac.len()).map_err(|_| bad("too long"))?;
    let too_large = || bad("too large");
    let binary = match suffix {
        "Ki" => Some(10),
        "Mi" => Some(20),
        "Gi" => Some(30),
        "Ti" => Some(40),
        "Pi" => Some(50),
        "Ei" => Some(60),
        _ => None,
    };
    if let Some(shift) = binary {
        let scaled = mantissa.checked_mul(1i128 << shift).and_then(|v| v.checked_mul(1000)).ok_or_else(too_large)?;
        return Ok(div_ceil_pow10(scaled, frac_len));
    }
    let exp10: i64 = match suffix {
        "n" => -9,
        "u" => -6,
        "m" => -3,
        "" => 0,
        "k" | "K" => 3,
        "M" => 6,
        "G" => 9,
        "T" => 12,
        "P" => 15,
        "E" => 18,
        other => match other.strip_prefix(['e', 'E']).map(str::parse::<i64>) {
            Some(Ok(e)) if (-40..=40).contains(&e) => e,
            Some(Ok(_)) => return Err(bad("exponent out of range")),
            _ => return Err(bad(&format!("unknown suffix {other:?}"))),
        },
    };
    let shift = exp10 + 3 - frac_len;
    if shift >= 0 {
        let factor = u32::try_from(shift).ok().and_then(|e| 10i128.checked_pow(e)).ok_or_else(too_large)?;
        mantissa.checked_mul(factor).ok_or_else(too_large)
    } else {
        Ok(div_ceil_pow10(mantissa, -shift))
    }
}

/// `value / 10^exp`, rounded up (value ≥ 0, exp ≥ 0).
fn div_ceil_pow10(value: i128, exp: i64) -> i128 {
    match u32::try_from(exp).ok().and_then(|e| 10i128.checked_pow(e)) {
        Some(d) => value / d + i128::from(value % d != 0),
        None => i128::from(value != 0),
    }
}

/// Parses a time: a bare number of seconds (`90`, `2.5`) or one or more
/// number-unit pairs with units `ms`, `s`, `m`, `h`, `d` (`30s`, `5m`, `1h30m`).
pub fn parse_seconds(s: &str) -> Result<f64, String> {
    seconds(s).map_err(|why| format!("invalid time {s:?}: {why}; {TIME_FORMS}"))
}

/// [`parse_seconds`] with just the reason as error.
fn seconds(s: &str) -> Result<f64, String> {
    let bad = |why: &str| why.to_string();
    let text = s.trim();
    if text.is_empty() {
        return Err(bad("empty"));
    }
    if let Ok(v) = text.parse::<f64>() {
        return if v.is_finite() && v >= 0.0 { Ok(v) } else { Err(bad("must be a finite, non-negative number")) };
    }
    let mut rest = text;
    let mut total = 0.0;
    while !rest.is_empty() {
        let n = rest.bytes().take_while(|b| b.is_ascii_digit() || *b == b'.').count();
        let (num, tail) = rest.split_at(n);
        let value: f64 = num.parse().map_err(|_| bad("expected a number before each unit"))?;
        let u = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(u);
        let factor = match unit {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            "" => return Err(bad("missing unit after a number (only a single bare number may omit it)")),
            other => return Err(bad(&format!("unknown unit {other:?}"))),
        };
        total += value * factor;
        rest = tail;
    }
    if total.is_finite() { Ok(total) } else { Err(bad("too large")) }
}

impl Qty {
    fn parse(s: &str) -> Result<Qty, String> {
        let text = s.trim();
        let milli = quantity_milli(text).map_err(|why| format!("invalid quantity {text:?}: {why}"))?;
        Ok(Qty { milli, text: text.to_string() })
    }
}

impl Secs {
    fn parse(s: &str) -> Result<Secs, String> {
        let text = s.trim();
        let secs = seconds(text).map_err(|why| format!("invalid time {text:?}: {why}"))?;
        Ok(Secs { secs, text: text.to_string() })
    }
}

impl FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Profile, String> {
        parse_profile(s).map_err(|why| format!("invalid profile {s:?}: {why}; {PROFILE_FORMS}"))
    }
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    let (shape_text, noise) = match s.split_once('~') {
        Some((shape, noise)) => (shape, Some(parse_noise(noise)?)),
        None => (s, None),
    };
    let shape_text = shape_text.trim();
    if shape_text.is_empty() {
        return Err("empty".to_string());
    }
    let Some(open) = shape_text.find('(') else {
        return Ok(Profile { shape: Box::new(Shape::Constant(Qty::parse(shape_text)?)), noise });
    };
    let func = shape_text[..open].trim();
    let Some(inner) = shape_text[open + 1..].strip_suffix(')') else {
        return Err(format!("{func}(...) must end with ')'"));
    };
    let args: Vec<&str> = inner.split(',').map(str::trim).collect();
    let arity = |names: &str, min: usize, max: usize| -> Result<(), String> {
        if args.len() < min || args.len() > max {
            Err(format!("{func} takes {names}, got {} argument(s)", args.len()))
        } else {
            Ok(())
        }
    };
    let shape = match func {
        "ramp" => {
            arity("(FROM, TO, START, END)", 4, 4)?;
            let (start, end) = (Secs::parse(args[2])?, Secs::parse(args[3])?);
            if end.secs < start.secs {
                return Err(format!("END ({}) is before START ({})", end.text, start.text));
            }
            Shape::Ramp { from: Qty::parse(args[0])?, to: Qty::parse(args[1])?, start, end }
        }
        "step" => {
            arity("(FROM, TO, AT)", 3, 3)?;
            Shape::Step { from: Qty::parse(args[0])?, to: Qty::parse(args[1])?, at: Secs::parse(args[2])? }
        }
        "sine" => {
            arity("(MEAN, AMPLITUDE, PERIOD[, PHASE])", 3, 4)?;
            let period = Secs::parse(args[2])?;
            if period.secs <= 0.0 {
                return Err("PERIOD must be greater than zero".to_string());
            }
            let phase = args.get(3).map(|p| Secs::parse(p)).transpose()?;
            Shape::Sine { mean: Qty::parse(args[0])?, amplitude: Qty::parse(args[1])?, period, phase }
        }
        "pulse" => {
            arity("(BASE, PEAK, EVERY, DURATION)", 4, 4)?;
            let (every, duration) = (Secs::parse(args[2])?, Secs::parse(args[3])?);
            if every.secs <= 0.0 {
                return Err("EVERY must be greater than zero".to_string());
            }
            if duration.secs > every.secs {
                return Err(format!("DURATION ({}) is longer than EVERY ({})", duration.text, every.text));
            }
            Shape::Pulse { base: Qty::parse(args[0])?, peak: Qty::parse(args[1])?, every, duration }
        }
        other => return Err(format!("unknown function {other:?}")),
    };
    Ok(Profile { shape: Box::new(shape), noise })
}

fn parse_noise(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let bad = || format!("noise must look like '~N%' with 0 <= N <= 100, got '~{t}'");
    let pct: f64 = t.strip_suffix('%').ok_or_else(bad)?.trim().parse().map_err(|_| bad())?;
    if (0.0..=100.0).contains(&pct) { Ok(pct) } else { Err(bad()) }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &*self.shape {
            Shape::Constant(q) => write!(f, "{}", q.text)?,
            Shape::Ramp { from, to, start, end } => {
                write!(f, "ramp({}, {}, {}, {})", from.text, to.text, start.text, end.text)?
            }
            Shape::Step { from, to, at } => write!(f, "step({}, {}, {})", from.text, to.text, at.text)?,
            Shape::Sine { mean, amplitude, period, phase } => {
                write!(f, "sine({}, {}, {}", mean.text, amplitude.text, period.text)?;
                if let Some(p) = phase {
                    write!(f, ", {}", p.text)?;
                }
                f.write_str(")")?
            }
            Shape::Pulse { base, peak, every, duration } => {
                write!(f, "pulse({}, {}, {}, {})", base.text, peak.text, every.text, duration.text)?
            }
        }
        if let Some(pct) = self.noise {
            write!(f, " ~{pct}%")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> Profile {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity_milli("250m"), Ok(250));
        assert_eq!(parse_quantity_milli("1.5"), Ok(1500));
        assert_eq!(parse_quantity_milli("2"), Ok(2000));
        assert_eq!(parse_quantity_milli("512Mi"), Ok(512 * 1024 * 1024 * 1000));
        assert_eq!(parse_quantity_milli("1Gi"), Ok((1 << 30) * 1000));
        assert_eq!(parse_quantity_milli("1.5Gi"), Ok(1_610_612_736_000));
        assert_eq!(parse_quantity_milli("64K"), Ok(64_000_000));
        assert_eq!(parse_quantity_milli("100M"), Ok(100_000_000_000));
        assert_eq!(parse_quantity_milli("1e3"), Ok(1_000_000));
        assert_eq!(parse_quantity_milli("0.0001"), Ok(1), "rounds up to a milli-unit");
        assert_eq!(parse_quantity_milli("10n"), Ok(1));
        assert_eq!(parse_quantity_milli("0"), Ok(0));
        assert_eq!(parse_quantity_milli(".5"), Ok(500));
        for bad in ["", "lots", "-1", "1.2.3", "1Zi", "m", "1 m", "99999999999999999999999999999999999999999E"] {
            let err = parse_quantity_milli(bad).expect_err(bad);
            assert!(err.contains("invalid quantity"), "{err}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(parse_seconds("90"), Ok(90.0));
        assert_eq!(parse_seconds("30s"), Ok(30.0));
        assert_eq!(parse_seconds("5m"), Ok(300.0));
        assert_eq!(parse_seconds("1h"), Ok(3600.0));
        assert_eq!(parse_seconds("1h30m"), Ok(5400.0));
        assert_eq!(parse_seconds("1.5m"), Ok(90.0));
        assert_eq!(parse_seconds("500ms"), Ok(0.5));
        for bad in ["", "-5", "5x", "m", "5m3", "inf", "NaN"] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shapes_evaluate() {
        assert_eq!(p("250m").value_milli(123.0, 1, "k"), 250);
        assert_eq!(p("512Mi").value_milli(0.0, 1, "k"), 536_870_912_000);
        let ramp = p("ramp(100m, 1100m, 1m, 11m)");
        assert_eq!(ramp.value_milli(0.0, 0, "k"), 100);
        assert_eq!(ramp.value_milli(60.0, 0, "k"), 100);
        assert_eq!(ramp.value_milli(360.0, 0, "k"), 600);
        assert_eq!(ramp.value_milli(660.0, 0, "k"), 1100);
        assert_eq!(ramp.value_milli(1e9, 0, "k"), 1100);
        let step = p("step(1Gi, 2Gi, 30s)");
        assert_eq!(step.value_milli(29.9, 0, "k"), (1 << 30) * 1000);
        assert_eq!(step.value_milli(30.0, 0, "k"), (2 << 30) * 1000);
        let sine = p("sine(1, 500m, 4m)");
        assert_eq!(sine.value_milli(0.0, 0, "k"), 1000);
        assert_eq!(sine.value_milli(60.0, 0, "k"), 1500);
        assert_eq!(sine.value_milli(180.0, 0, "k"), 500);
        assert_eq!(p("sine(1, 500m, 4m, 1m)").value_milli(0.0, 0, "k"), 1500);
        assert_eq!(p("sine(100m, 1, 60)").value_milli(45.0, 0, "k"), 0, "clamped at zero");
        let pulse = p("pulse(100m, 2, 5m, 30s)");
        assert_eq!(pulse.value_milli(0.0, 0, "k"), 2000);
        assert_eq!(pulse.value_milli(29.0, 0, "k"), 2000);
        assert_eq!(pulse.value_milli(30.0, 0, "k"), 100);
        assert_eq!(pulse.value_milli(310.0, 0, "k"), 2000);
        assert_eq!(pulse.value_milli(-10.0, 0, "k"), 100);
        assert_eq!(p("1").value_milli(f64::NAN, 0, "k"), 1000);
        assert!(p("1").is_constant() && !p("1 ~5%").is_constant() && !ramp.is_constant());
        assert_eq!(Profile::constant_milli(1500).to_string(), "1500m");
        assert_eq!(Profile::constant_milli(2000).value_milli(0.0, 0, ""), 2000);
    }

    #[test]
    fn noise_is_deterministic_and_bounded() {
        let noisy = p("1 ~10%");
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..2000 {
            let t = f64::from(i) * 7.0;
            let v = noisy.value_milli(t, 42, "ns/pod-a");
            assert!((900..=1100).contains(&v), "{v}");
            assert_eq!(v, noisy.value_milli(t, 42, "ns/pod-a"));
            // Same 15 s bucket, same value.
            let bucket_start = (t / 15.0).floor() * 15.0;
            assert_eq!(v, noisy.value_milli(bucket_start, 42, "ns/pod-a"));
            seen.insert(v);
        }
        assert!(seen.len() > 100, "noise varies over time");
        let a: Vec<i128> = (0..50).map(|i| noisy.value_milli(f64::from(i) * 15.0, 1, "a")).collect();
        let b: Vec<i128> = (0..50).map(|i| noisy.value_milli(f64::from(i) * 15.0, 1, "b")).collect();
        let c: Vec<i128> = (0..50).map(|i| noisy.value_milli(f64::from(i) * 15.0, 2, "a")).collect();
        assert_ne!(a, b, "keys differ");
        assert_ne!(a, c, "seeds differ");
        assert_eq!(p("1 ~0%").value_milli(5.0, 1, "a"), 1000);
    }

    #[test]
    fn errors_name_the_problem_and_the_forms() {
        for (bad, why) in [
            ("", "empty"),
            ("lots", "invalid quantity \"lots\""),
            ("ramp(1, 2, 3)", "ramp takes (FROM, TO, START, END), got 3"),
            ("ramp(1, 2, 5m, 1m)", "END (1m) is before START (5m)"),
            ("ramp(1, 2, 1m, 5m", "must end with ')'"),
            ("sine(1, 1, 0)", "PERIOD must be greater than zero"),
            ("pulse(1, 2, 1m, 2m)", "DURATION (2m) is longer than EVERY (1m)"),
            ("pulse(1, 2, 0, 0)", "EVERY must be greater than zero"),
            ("wave(1)", "unknown function \"wave\""),
            ("step(1, 2, soon)", "invalid time \"soon\""),
            ("1 ~ten%", "noise must look like"),
            ("1 ~150%", "noise must look like"),
            ("1 ~5", "noise must look like"),
        ] {
            let err = bad.parse::<Profile>().expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.contains("accepted forms"), "{err}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "250m",
            "1.5",
            "512Mi",
            "ramp(100m, 2, 30s, 10m)",
            "step(1Gi, 3Gi, 1h30m)",
            "sine(1, 500m, 4m)",
            "sine(1, 500m, 4m, 1m) ~5%",
            "pulse(100m, 2, 5m, 30s) ~2.5%",
        ] {
            let parsed = p(s);
            assert_eq!(parsed.to_string(), s);
            assert_eq!(p(&parsed.to_string()), parsed);
        }
        assert_eq!(p("  ramp( 1 ,2,3 , 4 )~5%").to_string(), "ramp(1, 2, 3, 4) ~5%");
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,40}", t in proptest::num::f64::ANY, seed in any::<u64>()) {
            if let Ok(profile) = s.parse::<Profile>() {
                let v = profile.value_milli(t, seed, &s);
                prop_assert!(v >= 0);
                prop_assert_eq!(profile.to_string().parse::<Profile>(), Ok(profile));
            }
        }

        #[test]
        fn generated_profiles_round_trip(
            kind in 0u8..5, a in 0u32..100_000, b in 0u32..100_000, t1 in 0u32..10_000, t2 in 0u32..10_000,
            noise in proptest::option::of(0u32..=100), t in 0.0f64..20_000.0,
        ) {
            let (lo, hi) = (t1.min(t2), t1.max(t2).max(1));
            let shape = match kind {
                0 => format!("{a}m"),
                1 => format!("ramp({a}m, {b}Mi, {lo}s, {hi})"),
                2 => format!("step({a}, {b}m, {t1}m)"),
                3 => format!("sine({a}Ki, {b}m, {hi}s, {lo})"),
                _ => format!("pulse({a}m, {b}m, {hi}, {lo}.5ms)"),
            };
            let text = match noise { Some(n) => format!("{shape} ~{n}%"), None => shape };
            let profile = p(&text);
            prop_assert_eq!(profile.to_string(), text.clone());
            let v = profile.value_milli(t, 7, "x");
            prop_assert_eq!(v, profile.value_milli(t, 7, "x"));
            if let Some(n) = noise {
                let plain = p(&text[..text.find(" ~").unwrap_or(text.len())]).value_milli(t, 7, "x");
                let bound = plain * i128::from(n) / 100 + 1;
                prop_assert!((v - plain).abs() <= bound, "{} vs {} (±{}%)", v, plain, n);
            }
        }
    }
}
