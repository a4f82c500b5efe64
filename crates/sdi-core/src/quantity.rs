//! Kubernetes resource quantities as integers: CPU in millicores, memory in bytes.
//!
//! Integers (not floats) so sums over thousands of pods are exact and comparisons
//! against allocatable never flicker on rounding.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid quantity {text:?}: {why}")]
pub struct QuantityError {
    pub text: String,
    pub why: &'static str,
}

/// Parse a quantity into its value times `scale` (1000 for millicores, 1 for bytes),
/// rounding up as the API server does for fractional results.
fn parse_scaled(text: &str, scale: u128) -> Result<u64, QuantityError> {
    let err = |why| QuantityError { text: text.to_string(), why };
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+')).unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    // (multiplier numerator, denominator)
    let (mul, div): (u128, u128) = match suffix {
        "" => (1, 1),
        "m" => (1, 1000),
        "n" => (1, 1_000_000_000),
        "u" => (1, 1_000_000),
        "k" => (1000, 1),
        "M" => (1000u128.pow(2), 1),
        "G" => (1000u128.pow(3), 1),
        "T" => (1000u128.pow(4), 1),
        "P" => (1000u128.pow(5), 1),
        "E" => (1000u128.pow(6), 1),
        "Ki" => (1 << 10, 1),
        "Mi" => (1 << 20, 1),
        "Gi" => (1 << 30, 1),
        "Ti" => (1 << 40, 1),
        "Pi" => (1 << 50, 1),
        "Ei" => (1 << 60, 1),
        _ if suffix.starts_with(['e', 'E']) => {
            let exp: u32 = suffix[1..].parse().map_err(|_| err("bad exponent"))?;
            (10u128.checked_pow(exp).ok_or_else(|| err("exponent too large"))?, 1)
        }
        _ => return Err(err("unknown suffix")),
    };
    let num = num.strip_prefix('+').unwrap_or(num);
    if num.is_empty() || num == "." {
        return Err(err("not a number"));
    }
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.contains('.') || frac.contains('.') || frac.len() > 18 {
        return Err(err("not a number"));
    }
    let digits = format!("{int}{frac}");
    let mantissa: u128 = if digits.is_empty() { 0 } else { digits.parse().map_err(|_| err("number too large"))? };
    let frac_div = 10u128.pow(frac.len() as u32);
    let numer = mantissa.checked_mul(mul).and_then(|v| v.checked_mul(scale)).ok_or_else(|| err("number too large"))?;
    let denom = div * frac_div;
    let value = numer.div_ceil(denom);
    u64::try_from(value).map_err(|_| err("number too large"))
}

/// CPU quantity ("250m", "1.5", "2") in millicores.
pub fn cpu_millis(text: &str) -> Result<u64, QuantityError> {
    parse_scaled(text, 1000)
}

/// CPU usage ("12345n" from metrics.k8s.io) in cores, without rounding to millicores.
pub fn cpu_cores(text: &str) -> Result<f64, QuantityError> {
    parse_scaled(text, 1_000_000_000).map(|n| n as f64 / 1e9)
}

/// Memory or storage quantity ("128Mi", "1G", "1e9") in bytes.
pub fn bytes(text: &str) -> Result<u64, QuantityError> {
    parse_scaled(text, 1)
}

/// A plain count ("110" pods).
pub fn count(text: &str) -> Result<u64, QuantityError> {
    parse_scaled(text, 1)
}

/// Millicores for people: "1500m (1.5 cores)" reads worse than "1.5".
pub fn format_cpu(millis: u64) -> String {
    if millis.is_multiple_of(1000) { format!("{}", millis / 1000) } else { format!("{millis}m") }
}

/// Bytes for people, in the binary unit Kubernetes manifests use.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [("Ti", 1 << 40), ("Gi", 1 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{}{unit}", bytes / size);
        }
    }
    if bytes >= 1 << 20 { format!("{:.1}Mi", bytes as f64 / (1u64 << 20) as f64) } else { format!("{bytes}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_quantities() {
        assert_eq!(cpu_millis("250m").unwrap(), 250);
        assert_eq!(cpu_millis("1.5").unwrap(), 1500);
        assert_eq!(cpu_millis("2").unwrap(), 2000);
        assert_eq!(cpu_millis("100000n").unwrap(), 1, "rounds up like the API server");
        assert_eq!(cpu_millis("0").unwrap(), 0);
        assert!(cpu_millis("lots").is_err());
        assert_eq!(cpu_cores("12500000n").unwrap(), 0.0125);
        assert!(cpu_millis("").is_err());
        assert!(cpu_millis("1.2.3").is_err());
    }

    #[test]
    fn memory_quantities() {
        assert_eq!(bytes("128Mi").unwrap(), 128 << 20);
        assert_eq!(bytes("1G").unwrap(), 1_000_000_000);
        assert_eq!(bytes("1e3").unwrap(), 1000);
        assert_eq!(bytes("1.5Gi").unwrap(), 3 << 29);
        assert_eq!(bytes("1024").unwrap(), 1024);
        assert!(bytes("1Qi").is_err());
        assert!(bytes("99999999999999999999Ei").is_err());
    }

    #[test]
    fn formatting() {
        assert_eq!(format_cpu(2000), "2");
        assert_eq!(format_cpu(250), "250m");
        assert_eq!(format_bytes(1 << 30), "1Gi");
        assert_eq!(format_bytes(1536 << 20), "1536Mi");
        assert_eq!(format_bytes(1000), "1000");
    }
}
