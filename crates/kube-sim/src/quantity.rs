//! Kubernetes `resource.Quantity` parsing and canonical formatting.
//!
//! The API server never keeps a quantity string verbatim: it parses it into an
//! exact decimal, rounds anything finer than `1n` up, and writes it back in a
//! canonical form (`"0.5"` becomes `"500m"`, `"1000m"` becomes `"1"`,
//! `"0.5Gi"` becomes `"512Mi"`). kube-sim has to do the same so that clients
//! see the strings a real server would return, and so that validation
//! messages quote quantities the way upstream does.
//!
//! Values are held as `mantissa * 10^scale` in an `i128`, which covers every
//! quantity the API can meaningfully store; absurdly large inputs are
//! rejected instead of silently wrapping.

use std::cmp::Ordering;

/// Upstream's error for a string that is not shaped like a quantity.
pub const FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
/// Upstream's error for an unknown suffix such as `"1Zi"`.
pub const SUFFIX_ERROR: &str = "unable to parse quantity's suffix";
/// Upstream's error when the numeric part cannot be represented.
pub const NUMERIC_ERROR: &str = "unable to parse numeric part of quantity";

/// How a quantity is written back; chosen by the suffix the client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `e3`, `E-2`: decimal exponent notation.
    DecimalExponent,
    /// `Ki`, `Mi`, ...: powers of 1024.
    BinarySI,
    /// `n`, `u`, `m`, ``, `k`, `M`, ...: powers of 1000.
    DecimalSI,
}

/// An exact quantity: `mantissa * 10^scale`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quantity {
    mantissa: i128,
    scale: i32,
    format: Format,
    /// The client's own spelling, kept when upstream would keep it (it
    /// reuses the input string when it is already canonical).
    original: Option<String>,
}

const DEC_SUFFIXES: [(&str, i32); 10] =
    [("n", -9), ("u", -6), ("m", -3), ("", 0), ("k", 3), ("M", 6), ("G", 9), ("T", 12), ("P", 15), ("E", 18)];
const BIN_SUFFIXES: [(&str, u32); 6] = [("Ki", 10), ("Mi", 20), ("Gi", 30), ("Ti", 40), ("Pi", 50), ("Ei", 60)];

struct Parts<'a> {
    positive: bool,
    num: &'a str,
    denom: &'a str,
    suffix: &'a str,
}

/// Splits like upstream's `parseQuantityString`: sign, integer digits (leading
/// zeros dropped), fraction digits, then the suffix.
fn split(s: &str) -> Result<Parts<'_>, String> {
    let b = s.as_bytes();
    let end = b.len();
    let mut pos = 0;
    let mut positive = true;
    if let Some(&c) = b.first() {
        if c == b'-' {
            positive = false;
            pos += 1;
        } else if c == b'+' {
            pos += 1;
        }
    }
    while pos < end && b[pos] == b'0' {
        pos += 1;
    }
    if pos >= end {
        return Ok(Parts { positive, num: "0", denom: "", suffix: "" });
    }
    let num_start = pos;
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    let mut num = &s[num_start..pos];
    if num.is_empty() {
        num = "0";
    }
    let mut denom = "";
    if pos < end && b[pos] == b'.' {
        pos += 1;
        let d_start = pos;
        while pos < end && b[pos].is_ascii_digit() {
            pos += 1;
        }
        denom = &s[d_start..pos];
    }
    let suffix_start = pos;
    while pos < end && b"eEinumkKMGTP".contains(&b[pos]) {
        pos += 1;
    }
    if pos < end && (b[pos] == b'-' || b[pos] == b'+') {
        pos += 1;
    }
    while pos < end && b[pos].is_ascii_digit() {
        pos += 1;
    }
    if pos < end {
        return Err(FORMAT_ERROR.to_string());
    }
    Ok(Parts { positive, num, denom, suffix: &s[suffix_start..] })
}

/// Suffix → (base, exponent, format), like upstream's suffixer.
fn interpret(suffix: &str) -> Option<(u32, i32, Format)> {
    if let Some(&(_, e)) = DEC_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
        return Some((10, e, Format::DecimalSI));
    }
    if let Some(&(_, e)) = BIN_SUFFIXES.iter().find(|(s, _)| *s == suffix) {
        return Some((2, e as i32, Format::BinarySI));
    }
    let rest = suffix.strip_prefix(['e', 'E'])?;
    if rest.is_empty() {
        return None;
    }
    let e: i64 = rest.parse().ok()?;
    Some((10, i32::try_from(e).ok()?, Format::DecimalExponent))
}

fn digits_to_i128(d: &str) -> Result<i128, String> {
    let d = d.trim_start_matches('0');
    if d.is_empty() {
        return Ok(0);
    }
    d.parse::<i128>().map_err(|_| NUMERIC_ERROR.to_string())
}

fn pow10(e: u32) -> Option<i128> {
    10i128.checked_pow(e)
}

impl Quantity {
    /// Parses a quantity exactly as the API server's JSON decoder does.
    pub fn parse(s: &str) -> Result<Quantity, String> {
        if s.is_empty() {
            return Err(FORMAT_ERROR.to_string());
        }
        let p = split(s)?;
        let (base, exponent, mut format) = interpret(p.suffix).ok_or_else(|| SUFFIX_ERROR.to_string())?;
        let original = reusable_spelling(s, &p, base, exponent, format);

        let digits = format!("{}{}", p.num, p.denom);
        let denom_len = i32::try_from(p.denom.len()).map_err(|_| NUMERIC_ERROR.to_string())?;
        let (mut mantissa, mut scale) = if base == 10 {
            let scale = exponent.checked_sub(denom_len).ok_or_else(|| NUMERIC_ERROR.to_string())?;
            if scale < -9 {
                // Drop digits finer than 1n, rounding the magnitude up.
                let drop = usize::try_from(-9 - scale).map_err(|_| NUMERIC_ERROR.to_string())?;
                let keep = digits.len().saturating_sub(drop);
                let (kept, dropped) = digits.split_at(keep);
                let mut m = digits_to_i128(kept)?;
                if dropped.bytes().any(|c| c != b'0') {
                    m = m.checked_add(1).ok_or_else(|| NUMERIC_ERROR.to_string())?;
                }
                (m, -9)
            } else {
                (digits_to_i128(&digits)?, scale)
            }
        } else {
            let m = digits_to_i128(&digits)?;
            let m = m.checked_mul(1i128 << exponent).ok_or_else(|| NUMERIC_ERROR.to_string())?;
            let mut q = (m, -denom_len);
            if q.1 < -9 {
                let div =
                    pow10(u32::try_from(-9 - q.1).unwrap_or(u32::MAX)).ok_or_else(|| NUMERIC_ERROR.to_string())?;
                let r = q.0 % div;
                q = (q.0 / div + i128::from(r != 0), -9);
            }
            q
        };
        if format == Format::BinarySI {
            // Upstream caps binary quantities at MaxInt64 and prints
            // fractions below one unit in decimal.
            let cap = Quantity { mantissa: i128::from(i64::MAX), scale: 0, format, original: None };
            let me = Quantity { mantissa, scale, format, original: None };
            if me.cmp_value(&cap) == Ordering::Greater {
                mantissa = i128::from(i64::MAX);
                scale = 0;
            } else if mantissa != 0 && me.cmp_value(&Quantity::from_int(1)) == Ordering::Less {
                format = Format::DecimalSI;
            }
        }
        if !p.positive {
            mantissa = -mantissa;
        }
        Ok(Quantity { mantissa, scale, format, original })
    }

    fn from_int(v: i128) -> Quantity {
        Quantity { mantissa: v, scale: 0, format: Format::DecimalSI, original: None }
    }

    /// True when the value is exactly zero.
    pub fn is_zero(&self) -> bool {
        self.mantissa == 0
    }

    /// True when the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.mantissa < 0
    }

    /// The suffix family the quantity is written in.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Value at `10^target` units, rounded away from zero (upstream
    /// `ScaledValue`), or `None` if it does not fit.
    fn scaled(&self, target: i32) -> Option<i128> {
        if self.scale >= target {
            let f = pow10(u32::try_from(self.scale - target).ok()?)?;
            self.mantissa.checked_mul(f)
        } else {
            let f = pow10(u32::try_from(target - self.scale).ok()?);
            let Some(f) = f else {
                return Some(self.mantissa.signum());
            };
            let q = self.mantissa / f;
            let r = self.mantissa % f;
            Some(if r == 0 { q } else { q + self.mantissa.signum() })
        }
    }

    /// Milli-units rounded away from zero, like upstream `MilliValue`.
    pub fn milli_value(&self) -> Option<i128> {
        self.scaled(-3)
    }

    /// Whole units rounded away from zero, like upstream `Value` (bytes for memory).
    pub fn value(&self) -> Option<i128> {
        self.scaled(0)
    }

    /// Numeric comparison, independent of format.
    pub fn cmp_value(&self, other: &Quantity) -> Ordering {
        let (a, b) = (self.mantissa, other.mantissa);
        if a.signum() != b.signum() || a == 0 {
            return a.signum().cmp(&b.signum());
        }
        let s = self.scale.min(other.scale);
        let lift = |m: i128, sc: i32| -> Option<i128> { m.checked_mul(pow10(u32::try_from(sc - s).ok()?)?) };
        match (lift(a, self.scale), lift(b, other.scale)) {
            (Some(x), Some(y)) => x.cmp(&y),
            // Only a side that overflowed can be the larger magnitude.
            (None, Some(_)) => a.signum().cmp(&0),
            (Some(_), None) => 0.cmp(&b.signum()),
            (None, None) => {
                let mag = |m: i128, sc: i32| m.unsigned_abs().to_string().len() as i64 + i64::from(sc);
                let o = mag(a, self.scale).cmp(&mag(b, other.scale));
                if a > 0 { o } else { o.reverse() }
            }
        }
    }

    /// Rounds up to milli precision, as `SetDefaults_ResourceList` does for
    /// every resource list it defaults.
    pub fn round_up_to_milli(&mut self) {
        if self.scale < -3 {
            if let Some(m) = self.scaled(-3) {
                self.mantissa = m;
                self.scale = -3;
            }
            self.original = None;
        }
    }

    /// The string upstream serializes this quantity as.
    pub fn canonical(&self) -> String {
        if let Some(s) = &self.original {
            return s.clone();
        }
        if self.mantissa == 0 {
            return "0".to_string();
        }
        let mut format = self.format;
        let mut whole = None;
        if format == Format::BinarySI {
            let small = self.cmp_value(&Quantity::from_int(-1024)) == Ordering::Greater
                && self.cmp_value(&Quantity::from_int(1024)) == Ordering::Less;
            whole = self.exact_integer();
            if small || whole.is_none() {
                format = Format::DecimalSI;
            }
        }
        match (format, whole) {
            (Format::BinarySI, Some(v)) => {
                let mut v = v;
                let mut times = 0u32;
                while v.unsigned_abs() >= 1024 && v % 1024 == 0 {
                    v /= 1024;
                    times += 1;
                }
                let suffix = BIN_SUFFIXES.iter().find(|(_, e)| *e == times * 10).map_or("", |(s, _)| *s);
                format!("{v}{suffix}")
            }
            _ => {
                let (amount, exp) = self.base10_canonical();
                let suffix = if format == Format::DecimalSI {
                    DEC_SUFFIXES
                        .iter()
                        .find(|(_, e)| *e == exp)
                        .map(|(s, _)| (*s).to_string())
                        .unwrap_or_else(|| format!("e{exp}"))
                } else if exp == 0 {
                    String::new()
                } else {
                    format!("e{exp}")
                };
                format!("{amount}{suffix}")
            }
        }
    }

    fn exact_integer(&self) -> Option<i128> {
        if self.scale >= 0 {
            return self.scaled(0);
        }
        let f = pow10(u32::try_from(-self.scale).ok()?)?;
        (self.mantissa % f == 0).then(|| self.mantissa / f)
    }

    /// Mantissa and a multiple-of-three exponent with trailing zeros folded in.
    fn base10_canonical(&self) -> (String, i32) {
        let mut m = self.mantissa;
        let mut e = self.scale;
        while m % 10 == 0 && m != 0 {
            m /= 10;
            e += 1;
        }
        let mut digits = m.unsigned_abs().to_string();
        while e % 3 != 0 {
            digits.push('0');
            e -= 1;
        }
        if m < 0 {
            digits.insert(0, '-');
        }
        (digits, e)
    }
}

/// Upstream keeps the client's string when it is already canonical (its
/// fast path); reproduce that so e.g. `"1Gi"` and `"100m"` round-trip.
fn reusable_spelling(s: &str, p: &Parts<'_>, base: u32, exponent: i32, format: Format) -> Option<String> {
    let digits_len = i32::try_from(p.num.len() + p.denom.len()).ok()?;
    match format {
        Format::BinarySI => {
            if exponent < 0 || !p.denom.is_empty() {
                return None;
            }
            let precision = 15 - i32::try_from(p.num.len()).ok()? - (exponent as f32 * 3.0 / 10.0) as i32 - 1;
            if precision < 0 {
                return None;
            }
            let value: i64 = p.num.parse().ok()?;
            value.checked_mul(1i64.checked_shl(u32::try_from(exponent).ok()?)?)?;
            (exponent % 10 == 0 && value & 0x07 != 0).then(|| s.to_string())
        }
        _ => {
            debug_assert_eq!(base, 10);
            if 18 - digits_len < 0 {
                return None;
            }
            let scale = exponent - i32::try_from(p.denom.len()).ok()?;
            if scale < -9 {
                return None;
            }
            let shifted = format!("{}{}", p.num, p.denom);
            (scale % 3 == 0 && !shifted.ends_with("000") && !shifted.starts_with('0')).then(|| s.to_string())
        }
    }
}

/// Parses to exact milli-units (rounded away from zero below `1m`).
pub fn parse_milli(s: &str) -> Result<i128, String> {
    Quantity::parse(s)?.milli_value().ok_or_else(|| format!("quantity {s:?} is too large"))
}

/// CPU in millicores, as the scheduler and kubelet read it.
pub fn parse_cpu_millis(s: &str) -> Result<i64, String> {
    i64::try_from(parse_milli(s)?).map_err(|_| format!("quantity {s:?} is too large"))
}

/// Memory/storage in bytes, rounded up like upstream `Value()`.
pub fn parse_bytes(s: &str) -> Result<i64, String> {
    Quantity::parse(s)?
        .value()
        .and_then(|v| i64::try_from(v).ok())
        .ok_or_else(|| format!("quantity {s:?} is too large"))
}

/// The string the server would store for this quantity.
pub fn canonicalize(s: &str) -> Result<String, String> {
    Ok(Quantity::parse(s)?.canonical())
}

/// Canonical form after the milli round-up applied to resource lists
/// (container requests/limits, node capacity, PVC requests, ...).
pub fn canonicalize_resource(s: &str) -> Result<String, String> {
    let mut q = Quantity::parse(s)?;
    q.round_up_to_milli();
    Ok(q.canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milli_table() {
        let cases: &[(&str, i128)] = &[
            ("100m", 100),
            ("1.5", 1500),
            ("64Mi", 64 * 1024 * 1024 * 1000),
            ("1Gi", 1024 * 1024 * 1024 * 1000),
            ("2e3", 2_000_000),
            ("1k", 1_000_000),
            ("500M", 500_000_000_000),
            ("0.5Ki", 512_000),
            ("0", 0),
            ("-2", -2000),
            ("+3", 3000),
            ("1n", 1),
            ("-1n", -1),
            ("1E", 1_000_000_000_000_000_000_000),
            ("1E-3", 1),
            ("0.1m", 1),
            ("5.", 5000),
            (".5", 500),
        ];
        for (s, want) in cases {
            assert_eq!(parse_milli(s), Ok(*want), "{s}");
        }
    }

    #[test]
    fn bytes_and_cpu() {
        assert_eq!(parse_bytes("64Mi"), Ok(67_108_864));
        assert_eq!(parse_bytes("1.5"), Ok(2));
        assert_eq!(parse_bytes("100m"), Ok(1));
        assert_eq!(parse_bytes("1G"), Ok(1_000_000_000));
        assert_eq!(parse_cpu_millis("250m"), Ok(250));
        assert_eq!(parse_cpu_millis("2"), Ok(2000));
    }

    #[test]
    fn rejects_garbage() {
        for s in ["", "abc", "1.2.3", "1 m", "1Mb", "--1", "1e", "1ee3", "0x10"] {
            assert!(Quantity::parse(s).is_err(), "{s} should fail");
        }
        assert_eq!(Quantity::parse("abc").err().as_deref(), Some(FORMAT_ERROR));
        assert_eq!(Quantity::parse("1Zi").err().as_deref(), Some(FORMAT_ERROR));
        assert_eq!(Quantity::parse("1Mb").err().as_deref(), Some(FORMAT_ERROR));
        assert_eq!(Quantity::parse("1iM").err().as_deref(), Some(SUFFIX_ERROR));
    }

    #[test]
    fn canonical_table() {
        let cases: &[(&str, &str)] = &[
            ("100m", "100m"),
            ("1000m", "1"),
            ("1.5", "1500m"),
            ("0.5", "500m"),
            ("64Mi", "64Mi"),
            ("1Gi", "1Gi"),
            ("0.5Gi", "512Mi"),
            ("0.5Ki", "512"),
            ("1536Mi", "1536Mi"),
            ("1024Mi", "1Gi"),
            ("1.5Ki", "1536"),
            ("2e3", "2e3"),
            ("2000e0", "2e3"),
            ("1k", "1k"),
            ("1000", "1k"),
            ("10000", "10k"),
            ("500M", "500M"),
            ("0", "0"),
            ("0Mi", "0"),
            ("-1.5", "-1500m"),
            ("0.0000000001", "1n"),
            ("12e-1", "1200e-3"),
            ("1.1Ki", "1126400m"),
            ("8Gi", "8Gi"),
            ("110", "110"),
            ("4", "4"),
        ];
        for (s, want) in cases {
            assert_eq!(canonicalize(s).as_deref(), Ok(*want), "{s}");
        }
    }

    #[test]
    fn resource_round_up() {
        assert_eq!(canonicalize_resource("1n").as_deref(), Ok("1m"));
        assert_eq!(canonicalize_resource("100n").as_deref(), Ok("1m"));
        assert_eq!(canonicalize_resource("1.0001").as_deref(), Ok("1001m"));
        assert_eq!(canonicalize_resource("128Mi").as_deref(), Ok("128Mi"));
    }

    #[test]
    fn comparisons() {
        let q = |s| Quantity::parse(s).expect("valid quantity");
        assert_eq!(q("1").cmp_value(&q("1000m")), Ordering::Equal);
        assert_eq!(q("1Ki").cmp_value(&q("1k")), Ordering::Greater);
        assert_eq!(q("-1").cmp_value(&q("0")), Ordering::Less);
        assert_eq!(q("1e30").cmp_value(&q("1")), Ordering::Greater);
    }
}
